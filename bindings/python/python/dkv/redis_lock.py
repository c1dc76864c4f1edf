"""redis-py's ``Lock`` for dkv, which runs no Lua scripts.

redis-py releases, extends and reacquires its locks with small Lua
scripts (compare the token, then delete or set the expiry). dkv answers
``EVALSHA`` with an error, so this subclass does the same three steps with
dkv's own commands instead: ``DKV.DELIFEQ key token`` and
``DKV.PEXPIREIFEQ key token ms [ADD]``. Acquiring is unchanged
(``SET key token NX PX ms``)::

    import redis
    from dkv.redis_lock import Lock

    r = redis.Redis(port=7001)
    with r.lock("resource", timeout=10, lock_class=Lock):
        ...

Through one dkv node each step is atomic, as with Redis. Through
different nodes at once two clients can both acquire (``SET NX`` is a read
then a write; see docs/commands.md), so send a lock's commands through
one node when mutual exclusion matters.
"""

from typing import List, Literal, Union

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock as RedisLock

__all__ = ["Lock"]


class Lock(RedisLock):
    """A ``redis.lock.Lock`` whose release, extend and reacquire need no
    scripts."""

    def register_scripts(self) -> None:
        # Nothing to register: no step here runs a script.
        pass

    def do_release(self, expected_token: Union[str, bytes]) -> None:
        if not int(self.redis.execute_command("DKV.DELIFEQ", self.name, expected_token)):
            raise LockNotOwnedError(
                "Cannot release a lock that's no longer owned",
                lock_name=self.name,
            )

    def do_extend(self, additional_time: Union[int, float], replace_ttl: bool) -> Literal[True]:
        args: List[Union[str, bytes, int]] = [
            "DKV.PEXPIREIFEQ",
            self.name,
            self.local.token,
            int(additional_time * 1000),
        ]
        if not replace_ttl:
            args.append("ADD")
        if not int(self.redis.execute_command(*args)):
            raise LockNotOwnedError(
                "Cannot extend a lock that's no longer owned",
                lock_name=self.name,
            )
        return True

    def do_reacquire(self) -> Literal[True]:
        timeout = int((self.timeout or 0) * 1000)
        if not int(self.redis.execute_command("DKV.PEXPIREIFEQ", self.name, self.local.token, timeout)):
            raise LockNotOwnedError(
                "Cannot reacquire a lock that's no longer owned",
                lock_name=self.name,
            )
        return True
