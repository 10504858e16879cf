"""Users, sessions, tokens and groups for the benchmark of our server.

Signing thousands of users in through the OTP flow is slow and rate
limited, so this makes what a sign-in leaves behind directly:

- a document in `users` ({_id, phone, createdAt, updatedAt}) and one in
  `sessions` ({_id, userId, device, ip, createdAt, lastUsedAt, revoked}),
  the shapes store/ngx_http_chat_users.c writes;
- the Redis hash `sess:{<sid>}` with `uid`, which the access-token gate
  (auth/ngx_http_chat_auth.c) checks, and no `jti:<jti>` key;
- the Redis hash `uh:{<uid>}` holding "" and the generation "g" "0"
  that a new user gets (store/ngx_http_chat_chat_ids_store.c), to which
  joining a group adds;
- an HS256 access token with the claims auth/ngx_http_chat_jwt.c issues
  (sub, sid, iat, exp, jti, iss, aud, typ "access"), signed with the bench config's
  secret.

Groups are made through the API itself (POST /api/chats/group by the
room's first member), so chats, members and admins have the store's own
shapes.  Output: one line per connection, "<token> <chatId>".
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pymongo
import redis
from bson import ObjectId


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, iss, aud, sub, sid, ttl):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({
        "sub": sub, "sid": sid, "iat": now, "exp": now + ttl,
        "jti": os.urandom(16).hex(), "iss": iss, "aud": aud,
        "typ": "access",
    }).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(),
                   hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def make_group(port, tok, name, members):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/chats/group",
        data=json.dumps({"name": name, "memberIds": members}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {tok}"},
        method="POST")
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["chat"]["id"]
        except urllib.error.HTTPError as e:
            err = f"{e.code} {e.read().decode(errors='replace')}"
            if e.code < 500:
                break
        except Exception as e:  # noqa: BLE001 (retried, then raised)
            err = e
            time.sleep(1)
    raise SystemExit(f"setup: group {name}: {err}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mongo-port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--database", default="chat")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--issuer", default="ngx_chat_module")
    ap.add_argument("--audience", default="chat")
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--room-size", type=int, required=True)
    ap.add_argument("--out", required=True)
    # a second set of users on the same store (the overload run's) needs
    # numbers of its own: phone is unique
    ap.add_argument("--phone-prefix", default="+1999")
    a = ap.parse_args()

    db = pymongo.MongoClient(f"mongodb://127.0.0.1:{a.mongo_port}/")[
        a.database]
    rd = redis.Redis(port=a.redis_port)
    now = datetime.datetime.now(datetime.timezone.utc)
    ttl = 86400

    uids = [ObjectId() for _ in range(a.users)]
    sids = [ObjectId() for _ in range(a.users)]
    t0 = time.time()

    for i in range(0, a.users, 2000):
        db.users.insert_many([
            {"_id": uids[j], "phone": f"{a.phone_prefix}{j:08d}",
             "createdAt": now, "updatedAt": now}
            for j in range(i, min(i + 2000, a.users))], ordered=False)
        db.sessions.insert_many([
            {"_id": sids[j], "userId": uids[j], "device": "bench",
             "ip": "127.0.0.1", "createdAt": now, "lastUsedAt": now,
             "revoked": False}
            for j in range(i, min(i + 2000, a.users))], ordered=False)

    p = rd.pipeline(transaction=False)
    for j in range(a.users):
        key = f"sess:{{{sids[j]}}}"
        p.hset(key, mapping={"uid": str(uids[j]), "cur": "bench"})
        p.expire(key, ttl)
        # a new user's (empty) candidate chat ids, which the groups add to
        p.hset(f"uh:{{{uids[j]}}}", mapping={"": "", "g": "0"})
        p.expire(f"uh:{{{uids[j]}}}", ttl)
    p.execute()

    toks = [token(a.secret, a.issuer, a.audience, str(uids[j]),
                  str(sids[j]), ttl) for j in range(a.users)]
    t1 = time.time()

    rooms = (a.users + a.room_size - 1) // a.room_size

    def room(r):
        first = r * a.room_size
        members = [str(u) for u in uids[first + 1:first + a.room_size]]
        return make_group(a.http_port, toks[first], f"bench room {r}",
                          members)

    with ThreadPoolExecutor(8) as ex:
        chats = list(ex.map(room, range(rooms)))

    with open(a.out, "w") as f:
        for j in range(a.users):
            f.write(f"{toks[j]} {chats[j // a.room_size]}\n")

    print(f"setup: {a.users} users and sessions in {t1 - t0:.1f} s, "
          f"{rooms} groups of up to {a.room_size} in "
          f"{time.time() - t1:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
