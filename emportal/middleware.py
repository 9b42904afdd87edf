"""WhiteNoise that stays asynchronous under Daphne.

WhiteNoise 6 is a sync-only middleware. Django adapts a sync middleware in an ASGI
stack by running it on the one thread that all "thread-sensitive" sync code shares, and
that thread then waits for everything below it: every HTTP request of the process,
tiles included, went through that single thread one at a time, and strokes queued behind
tiles. This subclass answers static files the same way and otherwise awaits the next
handler, so the stack stays async and only sync views themselves use that thread.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: Any) -> Any:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
