"""Personal API tokens: several named tokens per user, stored only as a hash, shown once.

Scripts send ``Authorization: Token <key>``; REST (DRF), tiles and websockets accept it
with the same per-project role checks as the browser session.
"""
