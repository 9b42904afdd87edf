"""Who else is on a volume: a socket that says where it is reaches the others, never itself."""
from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from tests.factories import make_volume
from tests.sockets import volume_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_presence_reaches_the_others_with_name_and_crosshair_and_says_who_left(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)

    async def scenario() -> dict[str, Any]:
        alice, bob = volume_socket(cast.annotator, volume.pk), volume_socket(cast.viewer, volume.pk)
        assert (await alice.connect())[0] and (await bob.connect())[0]
        await alice.receive_json_from()
        await bob.receive_json_from()
        assert await bob.receive_nothing(timeout=0.3)  # connecting alone says nothing
        await alice.send_json_to({"type": "presence", "focus": [1, 20, 30]})
        joined = await bob.receive_json_from(timeout=5)
        await bob.send_json_to({"type": "presence", "focus": [2, 5, 6]})
        answer = await alice.receive_json_from(timeout=5)
        quiet = await alice.receive_nothing(timeout=0.3)
        await alice.send_json_to({"type": "presence", "focus": [99, 0, 0]})  # outside the volume
        refused = await alice.receive_json_from(timeout=5)
        await alice.disconnect()
        left = await bob.receive_json_from(timeout=5)
        await bob.disconnect()
        return {"joined": joined, "answer": answer, "quiet": quiet, "refused": refused, "left": left}

    got = async_to_sync(scenario)()
    joined = got["joined"]
    assert (joined["type"], joined["user"], joined["focus"], joined["joined"]) == ("presence", "annotator", [1, 20, 30], True)
    assert (got["answer"]["user"], got["answer"]["focus"]) == ("viewer", [2, 5, 6])
    assert got["quiet"], "a socket got its own presence back"
    assert got["refused"]["type"] == "error" and got["refused"]["code"] == "invalid"
    assert got["left"] == {"type": "presence", "id": joined["id"], "user": "annotator", "focus": None, "left": True}
