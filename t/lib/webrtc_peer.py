#!/usr/bin/env python3
"""Two real WebRTC peers (aiortc) for t/064-turn.t.

Each peer gets its ICE servers from OUR route, GET
/api/calls/turn-credentials, with its own user's access token, and is
configured with iceTransportPolicy "relay": it gathers and uses relayed
candidates only, so the two can connect through the TURN server alone.
They open a data channel, say hello each way, and send audio (aiortc's
silence track, Opus-encoded) to each other.

Signalling is pluggable:

  local  the two peers hand each other their SDP in this process
         (LocalSignal), without the server;
  ws     each peer signs in on the server's plain WebSocket endpoint
         /ws?token=... and the call goes through the server's call
         events (WsSignal): call_initiate, incoming_call, call_accept,
         call_accepted, webrtc_offer/answer/ice_candidate, call_end.

Prints one JSON line: per peer its final ICE/connection state, the types
of the nominated candidate pair, the data channel message it got and the
audio frames it received; exits 0 if both connected and exchanged both
messages, 1 otherwise.

  webrtc_peer.py local|ws --base http://127.0.0.1:PORT \
      --token-a TOKEN --token-b TOKEN [--user-b ID] [--timeout SECONDS]
"""

import argparse
import asyncio
import itertools
import json
import sys
import urllib.request

from aiortc import (RTCConfiguration, RTCIceServer, RTCIceTransportPolicy,
                    RTCPeerConnection, RTCSessionDescription)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.sdp import candidate_from_sdp


def fetch_ice_servers(base, token):
    """The iceServers of our route's answer, as aiortc's RTCIceServer."""
    req = urllib.request.Request(
        base + "/api/calls/turn-credentials",
        headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.load(r)
    return [RTCIceServer(urls=s["urls"], username=s.get("username"),
                         credential=s.get("credential"))
            for s in body["iceServers"]]


class LocalSignal:
    """Both ends in this process: what one sends, the other receives."""

    def __init__(self):
        self.inbox = asyncio.Queue()
        self.other = None

    @classmethod
    def pair(cls):
        a, b = cls(), cls()
        a.other, b.other = b, a
        return a, b

    async def start_call(self):
        pass

    async def answer_call(self):
        pass

    async def send(self, kind, payload):
        await self.other.inbox.put((kind, payload))

    async def recv(self):
        return await self.inbox.get()

    async def close(self):
        pass


class WsSignal:
    """The server's call events over its plain WebSocket endpoint.

    Client to server: call_initiate {userId, type} (ack {call}),
    call_accept {callId}, call_end {callId}, webrtc_offer {callId, to, sdp},
    webrtc_answer {callId, to, sdp}, webrtc_ice_candidate {callId, to,
    candidate}.  Server to client: incoming_call {call}, call_accepted
    {callId, userId}, webrtc_offer/webrtc_answer {callId, from, sdp},
    webrtc_ice_candidate {callId, from, candidate}, call_ended.
    """

    def __init__(self, base, token, peer_id=None):
        self.url = base.replace("http", "ws", 1) + "/ws?token=" + token
        self.peer_id = peer_id          # the callee, for the caller
        self.call_id = None
        self.ids = itertools.count(1)
        self.acks = {}
        self.events = asyncio.Queue()
        self.ws = None
        self.reader = None

    async def open(self):
        import websockets
        self.ws = await websockets.connect(self.url, max_size=None)
        self.reader = asyncio.ensure_future(self._read())
        await self._wait_event("authenticated")

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            fut = self.acks.pop(msg.get("id"), None)
            if fut is not None and msg.get("event") in ("ack", "error"):
                fut.set_result(msg)
            else:
                await self.events.put(msg)

    async def _emit(self, event, data, wait=True):
        """Sends an event; with wait, returns its ack's data.

        Only call_initiate's ack carries what the peer needs (the call's
        id); the others are not waited for, but an error they bring is
        raised by the next _wait_event.
        """
        n = next(self.ids)
        await_it = None
        if wait:
            await_it = asyncio.get_running_loop().create_future()
            self.acks[n] = await_it
        await self.ws.send(json.dumps({"event": event, "data": data,
                                       "id": n}))
        if not wait:
            return {}
        msg = await await_it
        if msg.get("event") == "error":
            raise RuntimeError("%s refused: %s" % (event, json.dumps(msg)))
        return msg.get("data") or {}

    async def _wait_event(self, *names):
        while True:
            msg = await self.events.get()
            if msg.get("event") in names:
                return msg
            if msg.get("event") == "error":
                raise RuntimeError("refused: %s" % json.dumps(msg))

    async def start_call(self):
        ack = await self._emit("call_initiate",
                               {"userId": self.peer_id, "type": "audio"})
        self.call_id = ack["call"]["id"]
        msg = await self._wait_event("call_accepted")
        # the offer goes to whoever accepted
        self.peer_id = msg["data"].get("userId", self.peer_id)

    async def answer_call(self):
        msg = await self._wait_event("incoming_call")
        call = msg["data"]["call"]
        self.call_id = call["id"]
        await self._emit("call_accept", {"callId": self.call_id}, wait=False)

    async def send(self, kind, payload):
        data = {"callId": self.call_id, "to": self.peer_id}
        if kind == "candidate":
            data["candidate"] = payload
            await self._emit("webrtc_ice_candidate", data, wait=False)
        else:
            data["sdp"] = payload
            await self._emit("webrtc_" + kind, data, wait=False)

    async def recv(self):
        names = {"webrtc_offer": "offer", "webrtc_answer": "answer",
                 "webrtc_ice_candidate": "candidate"}
        msg = await self._wait_event(*names, "call_ended")
        if msg["event"] == "call_ended":
            raise RuntimeError("call ended: %s" % json.dumps(msg))
        data = msg["data"]
        # the callee answers whoever offered
        self.peer_id = data.get("from", self.peer_id)
        kind = names[msg["event"]]
        return kind, data["candidate"] if kind == "candidate" else data["sdp"]

    async def close(self):
        if self.ws is None:
            return
        try:
            if self.call_id:
                await self._emit("call_end", {"callId": self.call_id},
                                 wait=False)
        except Exception:
            pass
        await self.ws.close()
        self.reader.cancel()


class Peer:
    def __init__(self, name, ice_servers, signal, caller):
        self.name = name
        self.signal = signal
        self.caller = caller
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=ice_servers,
            iceTransportPolicy=RTCIceTransportPolicy.RELAY))
        self.got = None
        self.got_event = asyncio.Event()
        self.open_event = asyncio.Event()
        self.channel = None
        self.frames = 0
        self.pc.addTrack(AudioStreamTrack())

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            self._use(channel)

        @self.pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self._count(track))

    def _use(self, channel):
        self.channel = channel

        @channel.on("message")
        def on_message(message):
            self.got = message
            self.got_event.set()

        if channel.readyState == "open":
            self.open_event.set()
        else:
            channel.on("open", self.open_event.set)

    async def _count(self, track):
        try:
            while True:
                await track.recv()
                self.frames += 1
        except MediaStreamError:
            pass

    async def negotiate(self):
        if self.caller:
            await self.signal.start_call()
            self._use(self.pc.createDataChannel("chat"))
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self.signal.send("offer", self.pc.localDescription.sdp)
            await self._take("answer")
        else:
            await self.signal.answer_call()
            await self._take("offer")
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.signal.send("answer", self.pc.localDescription.sdp)

    async def _take(self, want):
        """The remote description; trickled candidates (a browser's) too."""
        while True:
            kind, payload = await self.signal.recv()
            if kind == "candidate":
                await self._add_candidate(payload)
                continue
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=payload, type=kind))
            return

    async def _add_candidate(self, c):
        if not c or not c.get("candidate"):
            return
        cand = candidate_from_sdp(c["candidate"].split(":", 1)[1])
        cand.sdpMid = c.get("sdpMid")
        cand.sdpMLineIndex = c.get("sdpMLineIndex")
        await self.pc.addIceCandidate(cand)

    def candidates(self):
        """The types of the local candidates in our SDP."""
        sdp = self.pc.localDescription.sdp if self.pc.localDescription else ""
        return sorted({line.split(" typ ")[1].split()[0]
                       for line in sdp.splitlines()
                       if line.startswith("a=candidate:")})

    def nominated(self):
        """(local type, remote type) of the pair ICE chose, if any."""
        try:
            ice = self.pc.getTransceivers()[0].receiver.transport.transport
            pair = ice._connection._nominated.get(1)
        except (AttributeError, IndexError):
            return None
        if pair is None:
            return None
        return [pair.local_candidate.type, pair.remote_candidate.type]

    def report(self):
        return {"ice": self.pc.iceConnectionState,
                "state": self.pc.connectionState,
                "candidates": self.candidates(),
                "pair": self.nominated(),
                "got": self.got,
                "audioFrames": self.frames}


async def converse(a, b, timeout):
    await asyncio.gather(a.negotiate(), b.negotiate())
    # the callee's channel comes with the caller's: wait for both ends
    await asyncio.wait_for(
        asyncio.gather(a.open_event.wait(), b.open_event.wait()), timeout)
    a.channel.send("hello from " + a.name)
    b.channel.send("hello from " + b.name)
    await asyncio.wait_for(
        asyncio.gather(a.got_event.wait(), b.got_event.wait()), timeout)
    # a second of audio each way (50 frames of 20 ms)
    for _ in range(int(timeout * 10)):
        if a.frames >= 50 and b.frames >= 50:
            break
        await asyncio.sleep(0.1)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["local", "ws"])
    ap.add_argument("--base", required=True)
    ap.add_argument("--token-a", required=True)
    ap.add_argument("--token-b", required=True)
    ap.add_argument("--user-b")
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()

    ice_a = fetch_ice_servers(args.base, args.token_a)
    ice_b = fetch_ice_servers(args.base, args.token_b)

    if args.mode == "local":
        sig_a, sig_b = LocalSignal.pair()
    else:
        sig_a = WsSignal(args.base, args.token_a, args.user_b)
        sig_b = WsSignal(args.base, args.token_b)
        await asyncio.gather(sig_a.open(), sig_b.open())

    a = Peer("a", ice_a, sig_a, caller=True)
    b = Peer("b", ice_b, sig_b, caller=False)

    error = None
    try:
        await asyncio.wait_for(converse(a, b, args.timeout),
                               args.timeout * 2)
    except Exception as e:      # the report says what was reached
        error = "%s: %s" % (type(e).__name__, e)

    out = {"a": a.report(), "b": b.report(), "error": error}
    await asyncio.gather(sig_a.close(), sig_b.close())
    await asyncio.gather(a.pc.close(), b.pc.close())

    print(json.dumps(out, sort_keys=True))
    ok = (error is None and a.got == "hello from b"
          and b.got == "hello from a")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
