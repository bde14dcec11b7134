#!/usr/bin/env python3
"""The Python baseline of connmix-bench: the chat tutorial's PHP consumer, ported to asyncio.

What it is
    A port of the CONNMIX chat tutorial's PHP consumer (a ReactPHP loop run by connmix-php) to
    one asyncio event loop and the ``websockets`` package. It keeps the tutorial's shape: one
    WebSocket per engine node, ``queue.pop`` on each, every queue event handled in the loop in
    the order it arrives, and fire-and-forget engine calls (each request frame is written and
    the next event handled without waiting for its result; results are read off the socket
    later and failures only counted). The argon2 password check and the SQLite queries run in
    the loop itself and block it while they run, as they block the PHP process; that is what
    the benchmark measures against the Rust ``chat-consumer``.

    Its replies and checks are chat-consumer's, not the tutorial's, because the benchmark
    checks every reply against chat-consumer's (JSON-equal, ignoring a delivery's ``time``):
    per-op argument checks and error texts, ``auth`` replying ``uid`` and ``name`` and always
    setting the context value ``uid`` (0 on failure), argon2 password hashes, channel rules
    (``room_<name>``, ``broadcast``, and only one's own ``user_<id>``), the 4096-byte message
    limit, 16 channels per request, ``sendtouser`` only to existing users, deliveries with
    ``uid``, ``from``, ``text`` and ``time``, replies built by a JSON encoder, and the
    ``online`` count of the ``users`` table kept on login and on ``close`` events.

Left out, compared with chat-consumer
    - No per-user message rate limit (the benchmark turns chat-consumer's off).
    - A failed engine call cannot change a reply that is already sent: where chat-consumer
      answers "Internal error, please retry" after a refused ``set_context_value``,
      ``subscribe``, ``unsubscribe`` or ``mesh.publish``, this consumer has already answered
      success. It also moves the ``online`` count without waiting for ``set_context_value``.
    - Plain-text passwords (rows loaded from the tutorial's SQL) are accepted, as
      chat-consumer accepts them, but not replaced by their hash.
    - An unknown user name is checked against a dummy hash with argon2id's default cost
      (19456 KiB, 2 passes), not chat-consumer's ``--argon2-*`` settings.
    - No worker pool and no database other than SQLite; nodes are discovered through the center
      in a helper thread (urllib), the only work done outside the loop.
    - Only the current wire dialect of the engine (``m``/``p``/``i`` requests).

Run it
    python3 -m venv venv && venv/bin/pip install -r requirements.txt
    venv/bin/python consumer.py --host 127.0.0.1:6787 --database /path/users.sqlite [--queue chat]

    The database must exist with its ``users`` table (``chat-consumer migrate`` makes it). For
    an engine that requires HTTP basic credentials, pass ``--api-user NAME`` (or set
    ``CONNMIX_API_USER``) and put the password in ``CONNMIX_API_PASSWORD``. The consumer prints
    ``consuming <queue> on N nodes`` to stderr once every node has accepted ``queue.pop``,
    keeps each link alive with WebSocket pings (every 20 s, pong within 10 s), reconnects a
    dropped node after 1 s, re-reads the node list every 60 s plus 1-10 s of jitter, and on
    SIGTERM or SIGINT stops consuming (``queue.unpop``), handles what it had already received,
    closes and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import math
import os
import random
import re
import signal
import sqlite3
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

# Limits, as chat-consumer's defaults (limits.rs, handlers/auth.rs, names.rs).
MAX_MESSAGE_BYTES = 4096
MAX_ROOM_NAME = 64
MAX_CHANNELS_PER_REQUEST = 16
MAX_NAME_BYTES = 255
MAX_PASSWORD_BYTES = 1024
NAME_CACHE_CAPACITY = 50_000

# Engine link timing (protocol-spec/SPEC.md 4.2 and the PHP client's habits).
PING_INTERVAL = 20.0
PONG_TIMEOUT = 10.0
RECONNECT_DELAY = 1.0
REFRESH_INTERVAL = 60.0
REFRESH_JITTER = (1.0, 10.0)
STARTUP_TIMEOUT = 10.0
DRAIN_TIMEOUT = 10.0
HTTP_TIMEOUT = 5.0
MAX_FRAME_BYTES = 64 * 1024 * 1024

U64_MAX = 2**64 - 1
I32_MAX = 2**31 - 1
UID_KEY = "uid"

# Ops and the texts browsers see (connmix-protocol chat.rs, chat-consumer handlers/mod.rs).
AUTH = "auth"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
SEND_TO_ROOM = "sendtoroom"
SEND_TO_USER = "sendtouser"
SEND_BROADCAST = "sendbroadcast"
PING = "ping"
KNOWN_OPS = {AUTH, SUBSCRIBE, UNSUBSCRIBE, SEND_TO_ROOM, SEND_TO_USER, SEND_BROADCAST, PING}

JSON_FORMAT_ERROR = "Json format error"
UNKNOWN_OP = "Unknown op"
NO_ACCESS = "No access"
BAD_LOGIN = "Invalid name or password"
INTERNAL = "Internal error, please retry"
EMPTY_MESSAGE = "Message is empty"
MESSAGE_TOO_LONG = "Message too long"
UNKNOWN_USER = "Unknown user"
TOO_MANY_CHANNELS = "Too many channels"
INVALID_CHANNEL = "Invalid channel"

BROADCAST = "broadcast"
ROOM_PREFIX = "room_"
USER_PREFIX = "user_"
ROOM_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
DIGITS = frozenset("0123456789")

Json = Any
Reply = dict[str, Json]


def log(message: str) -> None:
    print(f"consumer.py: {message}", file=sys.stderr, flush=True)


def encode(value: Json) -> str:
    """Compact JSON, non-ASCII kept as is; quotes and backslashes stay inside their strings."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- Reading JSON as strictly as serde_json does ---------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_SURROGATE = re.compile("[\ud800-\udfff]")
# serde_json refuses a 128th nested array or object.
MAX_JSON_DEPTH = 127


def _too_deep(value: Json, room: int = MAX_JSON_DEPTH) -> bool:
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    return room == 0 or any(_too_deep(item, room - 1) for item in items)


def _has_lone_surrogate(value: Json) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


def parse_json(text: str) -> Json:
    """Parses JSON text, refusing what serde_json refuses: NaN and Infinity, numbers beyond
    the float range, escaped lone surrogates, nesting deeper than 127. Raises ValueError."""
    try:
        value = _STRICT.decode(text)
    except RecursionError as err:
        raise ValueError("nested too deeply") from err
    # Python keeps a lone `\ud800` escape as a surrogate; only escapes can produce one.
    if "\\u" in text and _has_lone_surrogate(value):
        raise ValueError("lone surrogate")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise ValueError("nested too deeply")
    return value


def json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def as_u64(value: Json) -> int | None:
    """A JSON integer in 0..2^64-1, or None (booleans and floats are not integers)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64_MAX:
        return value
    return None


def parse_u64(text: str) -> int | None:
    """Digits (after an optional `+`, as Rust's u64 parser allows) in 0..2^64-1, or None."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or not all(c in DIGITS for c in digits):
        return None
    value = int(digits)
    return value if value <= U64_MAX else None


# --- The chat protocol: requests, replies, channels ------------------------------------------


def success(op: str) -> Reply:
    return {"op": op, "success": True}


def error(op: str, reason: str) -> Reply:
    return {"op": op, "error": reason}


class BadRequest(Exception):
    """A frame that is not a chat request; `reply` is what the browser is told."""

    def __init__(self, op: str | None, reason: str) -> None:
        super().__init__(reason)
        self.op = op
        self.reason = reason

    @property
    def reply(self) -> Reply:
        return {"error": JSON_FORMAT_ERROR} if self.op is None else error(self.op, self.reason)


class Refused(Exception):
    """A request the sender may not make; `reason` is what the browser is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChatRequest:
    """`op` with its string arguments, already checked for count and type."""

    op: str
    args: tuple[str, ...]


# Named arguments of the ops that take a fixed number of them.
FIXED_ARGS: dict[str, tuple[str, ...]] = {
    AUTH: ("name", "password"),
    SEND_TO_ROOM: ("room", "message"),
    SEND_TO_USER: ("user", "message"),
    SEND_BROADCAST: ("message",),
}


def parse_request(frame: str) -> ChatRequest:
    """Parses a browser frame as chat-consumer's ChatRequest::parse does. Raises BadRequest."""
    try:
        obj = parse_json(frame)
    except ValueError:
        raise BadRequest(None, JSON_FORMAT_ERROR) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
        raise BadRequest(None, JSON_FORMAT_ERROR)
    op: str = obj["op"]
    args = obj.get("args")
    if args is None:
        args = []
    elif not isinstance(args, list):
        raise BadRequest(op, f"args must be a list, not a {json_type(args)}")
    if op not in KNOWN_OPS:
        raise BadRequest(op, UNKNOWN_OP)
    if op == PING:
        return ChatRequest(op, ())
    if op in (SUBSCRIBE, UNSUBSCRIBE):
        if not args:
            raise BadRequest(op, "expects at least one channel")
        for arg in args:
            if not isinstance(arg, str):
                raise BadRequest(op, f"channel must be a string, not a {json_type(arg)}")
        return ChatRequest(op, tuple(args))
    names = FIXED_ARGS[op]
    if len(args) != len(names):
        plural = "" if len(names) == 1 else "s"
        raise BadRequest(
            op, f"expects {len(names)} argument{plural} ({', '.join(names)}), got {len(args)}"
        )
    for name, arg in zip(names, args, strict=True):
        if not isinstance(arg, str):
            raise BadRequest(op, f"{name} must be a string, not a {json_type(arg)}")
    return ChatRequest(op, tuple(args))


@dataclass(frozen=True)
class Channel:
    """A well-formed channel name: `room_<name>`, `user_<id>` (with `user_id`) or `broadcast`."""

    name: str
    kind: str
    user_id: int = 0


def parse_channel(name: str) -> Channel | None:
    """The channel, or None if the name is not one (as chat-consumer's Channel::parse)."""
    if name == BROADCAST:
        return Channel(name, "broadcast")
    if name.startswith(ROOM_PREFIX):
        room = name[len(ROOM_PREFIX) :]
        # Non-ASCII never passes the character check, so counting characters counts bytes.
        if room and len(room) <= MAX_ROOM_NAME and all(c in ROOM_NAME_CHARS for c in room):
            return Channel(name, "room")
        return None
    if name.startswith(USER_PREFIX):
        digits = name[len(USER_PREFIX) :]
        # Canonical ids only: `user_010` would be another engine channel than `user_10`.
        if not digits or digits[0] == "0" or not all(c in DIGITS for c in digits):
            return None
        user_id = int(digits)
        return Channel(name, "user", user_id) if user_id <= U64_MAX else None
    return None


def member(uid: int | None) -> int | None:
    """The logged-in user id: the script reports None before login and 0 after a failed one."""
    return uid if uid is not None and uid > 0 else None


def now_millis() -> int:
    return time.time_ns() // 1_000_000


# --- Users and passwords ---------------------------------------------------------------------


class StartupError(Exception):
    """The engine cannot be reached at start."""


class PasswordError(Exception):
    """A stored password hash that cannot be checked."""


class Passwords:
    """argon2 PHC hashes checked with argon2-cffi, in the calling thread (here: the loop)."""

    def __init__(self) -> None:
        # argon2id with the argon2 crate's default cost, as chat-consumer hashes by default.
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        self._dummy = self._hasher.hash("not a real password")

    def check(self, password: str, stored: str) -> bool:
        if not stored.startswith("$argon2"):
            # A plain-text row from the tutorial's SQL.
            return hmac.compare_digest(password.encode(), stored.encode())
        try:
            return self._hasher.verify(stored, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, ValueError) as err:
            raise PasswordError(f"stored password hash is not a valid argon2 hash: {err}") from err

    def check_absent(self, password: str) -> None:
        """Costs what a real check costs, so unknown names cannot be told from wrong passwords."""
        try:
            self._hasher.verify(self._dummy, password)
        except VerifyMismatchError:
            pass


@dataclass(frozen=True)
class User:
    id: int
    name: str
    password: str


def db_id(uid: int) -> int | None:
    """The `users.id` for a chat uid, if the column can hold it."""
    return uid if 0 < uid <= I32_MAX else None


class Users:
    """The `users` table (id, name, email, password, online, ...) over sqlite3, plus a cache
    of names by id for the `from` field of deliveries."""

    def __init__(self, path: str) -> None:
        uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw"
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        self._db.execute("SELECT id, name, password, online FROM users LIMIT 1").fetchall()
        self._names: dict[int, str] = {}

    def close(self) -> None:
        self._db.close()

    def find_by_name(self, name: str) -> User | None:
        row = self._db.execute(
            "SELECT id, name, password FROM users WHERE name = ? LIMIT 1", (name,)
        ).fetchone()
        return None if row is None else User(int(row[0]), str(row[1]), str(row[2]))

    def remember(self, uid: int, name: str) -> None:
        if len(self._names) >= NAME_CACHE_CAPACITY:
            self._names.clear()
        self._names[uid] = name

    def name_of(self, uid: int) -> str | None:
        """The user's name, None for no such user. Raises sqlite3.Error."""
        name = self._names.get(uid)
        if name is not None:
            return name
        key = db_id(uid)
        if key is None:
            return None
        row = self._db.execute("SELECT name FROM users WHERE id = ? LIMIT 1", (key,)).fetchone()
        if row is None:
            return None
        self.remember(uid, str(row[0]))
        return str(row[0])

    def count_in(self, uid: int) -> None:
        key = db_id(uid)
        if key is not None:
            self._db.execute("UPDATE users SET online = online + 1 WHERE id = ?", (key,))

    def count_out(self, uid: int) -> None:
        key = db_id(uid)
        if key is not None:
            self._db.execute(
                "UPDATE users SET online = online - 1 WHERE id = ? AND online > 0", (key,)
            )


# --- The chat: one queue event at a time -----------------------------------------------------


@dataclass(frozen=True)
class Conn:
    """A browser connection: the node holding it, its client id, and the link it came on."""

    node: str
    client: str
    link: NodeLink

    async def reply(self, reply: Reply) -> None:
        await self.link.call("mesh.send", {"c": self.client, "d": encode(reply)})

    async def conn_call(self, func: str, args: list[Json]) -> None:
        """conn.call, sent to the node that holds the connection (the event's `n`)."""
        params = {"c": self.client, "f": func, "a": args}
        link = self.link.cluster.link_for(self.node)
        if link is None or link is self.link:
            await self.link.call("conn.call", params)
            return
        try:
            await link.call("conn.call", params)
        except (ConnectionClosed, ConnectionError) as err:
            # Another node's link is down: a failed call, not a reason to drop this link.
            self.link.cluster.count_failure("conn.call", str(err))

    async def publish(self, channel: str, text: str) -> None:
        await self.link.call("mesh.publish", {"c": channel, "d": text})


class Chat:
    """The handlers of chat-consumer, answering through fire-and-forget engine calls."""

    def __init__(self, users: Users, passwords: Passwords) -> None:
        self.users = users
        self.passwords = passwords

    async def handle(self, conn: Conn, value: Json) -> None:
        """Handles one value the engine script pushed for `conn` (dispatch.rs)."""
        if isinstance(value, str):
            try:
                value = parse_json(value)
            except ValueError:
                value = None
        if not isinstance(value, dict):
            log(f"undecodable queue value from client {conn.client}")
            return
        event = value.get("event")
        if event is None:
            event = "message"
        uid = context_uid(value.get("uid"))
        if event == "close":
            await self.close(uid)
        elif event == "message":
            frame = value.get("frame")
            if not isinstance(frame, dict) or not valid_frame(frame):
                log(f"undecodable queue value from client {conn.client}")
            elif frame["type"] == "text":
                await self.request(conn, uid, frame["data"])
        elif event != "handshake":
            log(f"unknown script event from client {conn.client}")

    async def request(self, conn: Conn, uid: int | None, frame: str) -> None:
        try:
            request = parse_request(frame)
        except BadRequest as bad:
            if bad.op == AUTH:
                # The script waits for `uid` after any auth frame, well-formed or not.
                await self.refuse(conn, uid, bad.reply)
            else:
                await conn.reply(bad.reply)
            return
        op, args = request.op, request.args
        if op == AUTH:
            await self.auth(conn, uid, args[0], args[1])
        elif op in (SUBSCRIBE, UNSUBSCRIBE):
            await self.subscription(conn, op, uid, args)
        elif op == SEND_TO_ROOM:
            await self.send_to_room(conn, uid, args[0], args[1])
        elif op == SEND_TO_USER:
            await self.send_to_user(conn, uid, args[0], args[1])
        elif op == SEND_BROADCAST:
            await self.send_broadcast(conn, uid, args[0])
        else:
            await conn.reply({"op": "pong"})

    # auth ----------------------------------------------------------------------------------

    async def auth(self, conn: Conn, previous: int | None, name: str, password: str) -> None:
        if len(name.encode()) > MAX_NAME_BYTES or len(password.encode()) > MAX_PASSWORD_BYTES:
            await self.refuse(conn, previous, error(AUTH, BAD_LOGIN))
            return
        try:
            user = self.login(name, password)
        except (sqlite3.Error, PasswordError) as err:
            log(f"login failed for client {conn.client}: {err}")
            await self.refuse(conn, previous, error(AUTH, INTERNAL))
            return
        if user is None:
            await self.refuse(conn, previous, error(AUTH, BAD_LOGIN))
            return
        self.users.remember(user.id, user.name)
        await self.set_uid(conn, previous, user.id)
        await conn.reply({"op": AUTH, "success": True, "uid": user.id, "name": user.name})

    def login(self, name: str, password: str) -> User | None:
        """The user if the password is right. Blocks the loop for the hash, on purpose."""
        user = self.users.find_by_name(name)
        if user is None:
            self.passwords.check_absent(password)
            return None
        if not self.passwords.check(password, user.password):
            return None
        # A negative id cannot be a uid; chat-consumer reads it as 0.
        return User(max(user.id, 0), user.name, user.password)

    async def refuse(self, conn: Conn, previous: int | None, why: Reply) -> None:
        """Any failed auth: uid 0 releases the script's wait; then the browser hears why."""
        await self.set_uid(conn, previous, 0)
        await conn.reply(why)

    async def set_uid(self, conn: Conn, previous: int | None, uid: int) -> None:
        """Sets the context value and moves the `online` count from the previous user."""
        await conn.conn_call("set_context_value", [UID_KEY, uid])
        old, new = member(previous), member(uid)
        if old == new:
            return
        try:
            if old is not None:
                self.users.count_out(old)
            if new is not None:
                self.users.count_in(new)
        except sqlite3.Error as err:
            log(f"cannot update the online count of client {conn.client}: {err}")

    async def close(self, uid: int | None) -> None:
        """A connection closed: its user has one connection fewer (never below zero)."""
        old = member(uid)
        if old is None:
            return
        try:
            self.users.count_out(old)
        except sqlite3.Error as err:
            log(f"cannot count uid {old} out: {err}")

    # subscribe, unsubscribe ----------------------------------------------------------------

    async def subscription(
        self, conn: Conn, op: str, uid: int | None, channels: tuple[str, ...]
    ) -> None:
        """subscribe/unsubscribe: all the channels, or none if any is refused."""
        me = member(uid)
        if me is None:
            await conn.reply(error(op, NO_ACCESS))
            return
        if len(channels) > MAX_CHANNELS_PER_REQUEST:
            await conn.reply(error(op, TOO_MANY_CHANNELS))
            return
        for name in channels:
            channel = parse_channel(name)
            if channel is None:
                await conn.reply(error(op, f"{INVALID_CHANNEL}: {name}"))
                return
            if channel.kind == "user" and channel.user_id != me:
                await conn.reply(error(op, f"{NO_ACCESS}: {name}"))
                return
        await conn.conn_call(op, list(channels))
        await conn.reply(success(op))

    # sendtoroom, sendtouser, sendbroadcast -------------------------------------------------

    @staticmethod
    def admit(uid: int | None, text: str) -> int:
        """The sender, if it may send `text` (no rate limit here). Raises Refused."""
        sender = member(uid)
        if sender is None:
            raise Refused(NO_ACCESS)
        if not text:
            raise Refused(EMPTY_MESSAGE)
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise Refused(MESSAGE_TOO_LONG)
        return sender

    async def send_to_room(self, conn: Conn, uid: int | None, room: str, text: str) -> None:
        try:
            sender = self.admit(uid, text)
        except Refused as refused:
            await conn.reply(error(SEND_TO_ROOM, refused.reason))
            return
        channel = parse_channel(room)
        if channel is None or channel.kind != "room":
            await conn.reply(error(SEND_TO_ROOM, f"{INVALID_CHANNEL}: {room}"))
            return
        await self.publish(conn, SEND_TO_ROOM, room, sender, text)

    async def send_to_user(self, conn: Conn, uid: int | None, user: str, text: str) -> None:
        try:
            sender = self.admit(uid, text)
        except Refused as refused:
            await conn.reply(error(SEND_TO_USER, refused.reason))
            return
        channel = parse_channel(user)
        if channel is None or channel.kind != "user":
            await conn.reply(error(SEND_TO_USER, f"{INVALID_CHANNEL}: {user}"))
            return
        try:
            exists = self.users.name_of(channel.user_id) is not None
        except sqlite3.Error as err:
            log(f"cannot look up user {channel.user_id}: {err}")
            await conn.reply(error(SEND_TO_USER, INTERNAL))
            return
        if not exists:
            await conn.reply(error(SEND_TO_USER, UNKNOWN_USER))
            return
        await self.publish(conn, SEND_TO_USER, user, sender, text)

    async def send_broadcast(self, conn: Conn, uid: int | None, text: str) -> None:
        try:
            sender = self.admit(uid, text)
        except Refused as refused:
            await conn.reply(error(SEND_BROADCAST, refused.reason))
            return
        await self.publish(conn, SEND_BROADCAST, BROADCAST, sender, text)

    async def publish(self, conn: Conn, op: str, channel: str, sender: int, text: str) -> None:
        """Publishes a delivery (publish.rs), then tells the sender: success, without waiting."""
        try:
            sender_name = self.users.name_of(sender)
        except sqlite3.Error as err:
            # A missing name only loses the `from` field; the message still goes out.
            log(f"cannot look up the name of uid {sender}: {err}")
            sender_name = None
        delivery: dict[str, Json] = {
            "event": "subscribe",
            "channel": channel,
            "data": f"uid:{sender},message:{text}",
            "uid": sender,
        }
        if sender_name is not None:
            delivery["from"] = sender_name
        delivery["text"] = text
        delivery["time"] = now_millis()
        await conn.publish(channel, encode(delivery))
        await conn.reply(success(op))


def context_uid(value: Json) -> int | None:
    """The script's context value `uid`: a number, or digits in a string; else unset."""
    if isinstance(value, str):
        return parse_u64(value)
    return as_u64(value)


def valid_frame(frame: dict[str, Json]) -> bool:
    """A WebSocket frame as the script's Lua module decodes it: type, data, optional finish."""
    return (
        isinstance(frame.get("type"), str)
        and isinstance(frame.get("data"), str)
        and ("finish" not in frame or isinstance(frame["finish"], bool))
    )


# --- The engine: center discovery and one WebSocket per node ---------------------------------


@dataclass(frozen=True)
class Engine:
    """Where and how to reach the engine."""

    center: str
    authorization: str | None
    queue: str

    def headers(self) -> dict[str, str]:
        return {} if self.authorization is None else {"Authorization": self.authorization}


def is_id(value: Json) -> bool:
    """Node ids are opaque strings; some engines write numbers."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def basic_authorization(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _http_get_json(engine: Engine, path: str) -> Json:
    url = f"http://{engine.center}{path}"
    request = urllib.request.Request(url, headers=engine.headers())
    # No proxy: the center is addressed directly, as the Rust client does.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=HTTP_TIMEOUT) as response:
        return json.loads(response.read())


def discover_blocking(engine: Engine) -> tuple[str, dict[str, str]]:
    """The API version and the nodes (id -> API server address) from the center."""
    version = _http_get_json(engine, "/version")
    apis = version.get("apis") if isinstance(version, dict) else None
    if not isinstance(apis, list) or not apis or not isinstance(apis[0], str):
        raise ValueError("GET /version listed no API version")
    api = apis[0]
    listing = _http_get_json(engine, f"/{api}/nodes")
    nodes: dict[str, str] = {}
    for node in listing.get("nodes", []) if isinstance(listing, dict) else []:
        if not isinstance(node, dict):
            continue
        node_id = node.get("id")
        address = node.get("api_server") or node.get("host")
        if is_id(node_id) and isinstance(address, str):
            nodes[str(node_id)] = address
    return api, nodes


class NodeLink:
    """One engine node: a WebSocket to its API server consuming the queue, reconnected after
    `RECONNECT_DELAY` until stopped. Events are handled one by one in the reading task."""

    def __init__(self, cluster: Cluster, node_id: str, address: str) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.address = address
        self.consuming = False
        self._ws: ClientConnection | None = None
        self._next_id = 1
        self._pending: dict[int, str] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"node {self.node_id}")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def call(self, method: str, params: dict[str, Json]) -> None:
        """Writes a request and returns: its result is read (and a failure counted) later."""
        ws = self._ws
        if ws is None:
            raise ConnectionError(f"node {self.node_id} is not connected")
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = method
        await ws.send(encode({"m": method, "p": params, "i": request_id}))

    async def stop(self) -> None:
        """Stops consuming; the reading task handles what arrived before the engine's answer,
        then closes. A link that is not consuming is simply cancelled."""
        self._stopping = True
        if self._task is None:
            return
        if self._ws is not None and self.consuming:
            try:
                await self.call("queue.unpop", {})
                return
            except (ConnectionClosed, ConnectionError):
                pass
        self._task.cancel()

    async def _run(self) -> None:
        url = f"ws://{self.address}/ws/{self.cluster.api}"
        while not self._stopping:
            try:
                async with connect(
                    url,
                    additional_headers=self.cluster.engine.headers(),
                    compression=None,
                    proxy=None,
                    open_timeout=HTTP_TIMEOUT,
                    ping_interval=PING_INTERVAL,
                    ping_timeout=PONG_TIMEOUT,
                    max_size=MAX_FRAME_BYTES,
                ) as ws:
                    self._ws = ws
                    await self._session(ws)
            except (OSError, WebSocketException, TimeoutError) as err:
                if not self._stopping:
                    log(f"node {self.node_id} ({self.address}): {err or type(err).__name__}")
            except Exception as err:  # a bug here must not end the link for good
                log(f"node {self.node_id}: {type(err).__name__}: {err}")
            finally:
                self._ws = None
                self.consuming = False
                self._pending.clear()
            if not self._stopping:
                await asyncio.sleep(RECONNECT_DELAY)

    async def _session(self, ws: ClientConnection) -> None:
        await self.call("queue.pop", {"t": [self.cluster.engine.queue]})
        async for frame in ws:
            if not isinstance(frame, str) or frame == "pong":
                continue
            try:
                message = json.loads(frame)
            except ValueError:
                log(f"node {self.node_id} sent a frame that is not JSON")
                continue
            if not isinstance(message, dict):
                continue
            if "e" in message:
                await self._event(message)
            elif not self._result(message):
                await ws.close()
                return

    async def _event(self, message: dict[str, Json]) -> None:
        if message.get("e") != "queue.pop":
            return
        params = message.get("p")
        if not isinstance(params, dict):
            return
        client = params.get("c")
        client_id = parse_u64(client) if isinstance(client, str) else as_u64(client)
        if client_id is None:
            log(f"node {self.node_id} sent a queue event without a usable client id")
            return
        node = params.get("n")
        node_id = str(node) if is_id(node) else self.node_id
        conn = Conn(node_id, str(client_id), self)
        try:
            await self.cluster.chat.handle(conn, params.get("d"))
        except (ConnectionClosed, ConnectionError):
            raise
        except Exception as err:  # one bad event must not end the link
            log(f"event from client {client_id} failed: {type(err).__name__}: {err}")

    def _result(self, message: dict[str, Json]) -> bool:
        """Reads a reply; False when the session should end."""
        request_id = message.get("i", message.get("id"))
        method = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        failure = message.get("E")
        if method == "queue.pop":
            if failure is not None:
                log(f"node {self.node_id} refused queue.pop: {encode(failure)}")
                return False
            self.consuming = True
            self.cluster.on_consuming(self)
        elif method == "queue.unpop":
            if failure is not None:
                log(f"node {self.node_id} refused queue.unpop: {encode(failure)}")
            return False
        elif failure is not None:
            self.cluster.count_failure(method or "unknown request", failure)
        return True


class Cluster:
    """All node links, kept in line with the center's node list."""

    def __init__(self, engine: Engine, chat: Chat, api: str) -> None:
        self.engine = engine
        self.chat = chat
        self.api = api
        self.links: dict[str, NodeLink] = {}
        self.failures: Counter[str] = Counter()
        self._announced = False
        self._stopping: set[asyncio.Task[None]] = set()

    def link_for(self, node_id: str) -> NodeLink | None:
        return self.links.get(node_id)

    def update(self, nodes: dict[str, str]) -> None:
        for node_id, link in list(self.links.items()):
            if nodes.get(node_id) != link.address:
                del self.links[node_id]
                task = asyncio.create_task(link.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
        for node_id, address in nodes.items():
            if node_id not in self.links:
                link = NodeLink(self, node_id, address)
                self.links[node_id] = link
                link.start()

    def on_consuming(self, link: NodeLink) -> None:
        if self._announced:
            log(f"node {link.node_id}: consuming {self.engine.queue} again")
        elif all(other.consuming for other in self.links.values()):
            self._announced = True
            log(f"consuming {self.engine.queue} on {len(self.links)} nodes")

    def count_failure(self, method: str, failure: Json) -> None:
        if self.failures[method] == 0:
            log(f"{method} failed (further failures are only counted): {encode(failure)}")
        self.failures[method] += 1

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL + random.uniform(*REFRESH_JITTER))
            try:
                api, nodes = await asyncio.to_thread(discover_blocking, self.engine)
            except Exception as err:
                log(f"cannot re-read the node list: {err}")
                continue
            if api != self.api:
                log(f"the center now prefers API {api}; staying on {self.api}")
            self.update(nodes)

    async def shutdown(self) -> None:
        links = list(self.links.values())
        for link in links:
            await link.stop()
        tasks = [link.task for link in links if link.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.failures:
            counts = ", ".join(f"{method}={n}" for method, n in sorted(self.failures.items()))
            log(f"failed engine calls: {counts}")


async def first_discovery(engine: Engine, stop: asyncio.Event) -> tuple[str, dict[str, str]] | None:
    """Asks the center until it lists a node, for up to STARTUP_TIMEOUT seconds."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "the center listed no node"
    while not stop.is_set():
        try:
            api, nodes = await asyncio.to_thread(discover_blocking, engine)
            if nodes:
                return api, nodes
            last = "the center listed no node"
        except Exception as err:
            last = str(err) or type(err).__name__
        if time.monotonic() >= deadline:
            raise StartupError(f"cannot reach the engine at {engine.center}: {last}")
        try:
            await asyncio.wait_for(stop.wait(), timeout=RECONNECT_DELAY)
        except TimeoutError:
            pass
    return None


async def serve(engine: Engine, chat: Chat) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    found = await first_discovery(engine, stop)
    if found is None:
        return
    api, nodes = found
    cluster = Cluster(engine, chat, api)
    cluster.update(nodes)
    refresher = asyncio.create_task(cluster.refresh_forever(), name="refresh")
    await stop.wait()
    refresher.cancel()
    await cluster.shutdown()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Python asyncio baseline of the CONNMIX chat consumer (connmix-bench)."
    )
    parser.add_argument("--host", default="127.0.0.1:6787", help="the engine's center, host:port")
    parser.add_argument("--database", required=True, help="SQLite file with the users table")
    parser.add_argument("--queue", default="chat", help="queue topic of the chat script")
    parser.add_argument(
        "--api-user",
        default=os.environ.get("CONNMIX_API_USER"),
        help="user of the engine's HTTP basic credentials; password in CONNMIX_API_PASSWORD",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    authorization: str | None = None
    if args.api_user:
        password = os.environ.get("CONNMIX_API_PASSWORD")
        if password is None:
            log("--api-user needs the password in the environment variable CONNMIX_API_PASSWORD")
            return 2
        authorization = basic_authorization(args.api_user, password)
    try:
        users = Users(args.database)
    except sqlite3.Error as err:
        log(f"cannot open the users table in {args.database}: {err}")
        return 1
    engine = Engine(args.host, authorization, args.queue)
    try:
        asyncio.run(serve(engine, Chat(users, Passwords())))
    except StartupError as err:
        log(str(err))
        return 1
    finally:
        users.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
