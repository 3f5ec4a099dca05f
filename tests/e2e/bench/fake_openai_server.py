#!/usr/bin/env python3
"""A fake OpenAI-compatible streaming server (stdlib only) for testing `wideserve bench`.

It streams exact, timed SSE responses (first token after --ttft-ms, then one chunk every --itl-ms,
usage before [DONE]) and, by a deterministic cycle (--mix), misbehaves: HTTP 500/400 with JSON
errors, stalls (before or after the headers), dropped connections (reset or FIN mid-stream),
streams without usage, in-stream error events, streams without [DONE], and non-JSON chunks.

Prints "PORT <n>" on stdout once listening. GET /stats returns what it received and did.
"""
import argparse
import asyncio
import json
import random
import socket
import sys

BEHAVIOURS = ["ok", "http500", "http400", "stall", "stall_headers", "drop", "drop_close",
              "nousage", "streamerr", "nodone", "badjson"]


def parse_mix(spec):
    cycle = []
    for part in spec.split(","):
        name, _, count = part.partition(":")
        if name not in BEHAVIOURS:
            raise SystemExit(f"unknown behaviour {name!r}; known: {BEHAVIOURS}")
        cycle += [name] * int(count or 1)
    return cycle


def prompt_tokens(body, chat):
    """Token counts the test can predict: one token per id, or per whitespace-separated word."""
    if chat:
        return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    p = body.get("prompt", "")
    return len(p) if isinstance(p, list) else len(p.split())


class FakeServer:
    def __init__(self, args):
        self.args = args
        self.cycle = parse_mix(args.mix)
        self.next = 0
        self.bodies = []
        self.done = {}
        self.rng = random.Random(args.seed)

    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep = await self.route(method, path, headers, body, reader, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def send_json(self, writer, status, obj):
        data = json.dumps(obj).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()

    async def route(self, method, path, headers, raw, reader, writer):
        if method == "GET" and path == "/stats":
            await self.send_json(writer, 200, {"requests": len(self.bodies), "bodies": self.bodies,
                                               "done": self.done})
            return True
        if method == "GET" and path in ("/health", "/v1/models"):
            await self.send_json(writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            return True
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            await self.send_json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            body = json.loads(raw)
        except ValueError:
            await self.send_json(writer, 400, {"error": {"message": "body is not JSON"}})
            return True
        self.bodies.append(body)
        behaviour = self.cycle[self.next % len(self.cycle)]
        self.next += 1
        self.done[behaviour] = self.done.get(behaviour, 0) + 1
        chat = path == "/v1/chat/completions"
        if behaviour == "http500":
            await self.send_json(writer, 500, {"error": {"message": "fake internal error", "type": "internal_error", "code": 500}})
            return True
        if behaviour == "http400":
            await self.send_json(writer, 400, {"error": {"message": "fake bad request", "type": "invalid_request_error", "code": 400}})
            return True
        if behaviour == "stall_headers":
            await self.stall(reader)
            return False
        return await self.stream(behaviour, body, chat, reader, writer)

    async def stall(self, reader):
        # No bytes at all until the client gives up and closes the connection.
        while await reader.read(4096):
            pass

    async def write(self, writer, payload):
        """Writes one piece of the body (chunk-framed unless close-delimited), maybe fragmented."""
        data = payload if self.args.close_delimited else b"%x\r\n%s\r\n" % (len(payload), payload)
        if self.args.fragment and len(data) > 1:
            cuts = sorted(self.rng.sample(range(1, len(data)), min(3, len(data) - 1)))
            for a, b in zip([0] + cuts, cuts + [len(data)]):
                writer.write(data[a:b])
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(data)
            await writer.drain()

    async def stream(self, behaviour, body, chat, reader, writer):
        a = self.args
        n = int(body.get("max_tokens") or 16)
        ptoks = prompt_tokens(body, chat)
        framing = "Connection: close\r\n" if a.close_delimited else "Transfer-Encoding: chunked\r\n"
        writer.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                      + framing + "\r\n").encode())
        await writer.drain()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text=None, finish=None, usage=None, choices=True):
            c = {"id": "cmpl-fake", "object": obj, "created": 0, "model": body.get("model", "")}
            if choices:
                choice = {"index": 0, "finish_reason": finish}
                if chat:
                    choice["delta"] = {} if text is None else {"content": text}
                else:
                    choice["text"] = text or ""
                c["choices"] = [choice]
            else:
                c["choices"] = []
            if usage is not None:
                c["usage"] = usage
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        if chat:  # role-only first chunk, as OpenAI sends: no content, not a token
            await self.write(writer, chunk(text=None))
        k = a.tokens_per_chunk
        n_chunks = (n + k - 1) // k
        for i in range(n_chunks):
            # Absolute schedule: chunk i at ttft + i * itl after the request, without drift.
            delay = t0 + (a.ttft_ms + i * a.itl_ms) / 1000.0 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            toks = min(k, n - i * k)
            await self.write(writer, chunk(text="".join(f" tok{i * k + j}" for j in range(toks))))
            if i == 0 and behaviour == "stall":
                await self.stall(reader)
                return False
            if i == 1 and behaviour in ("drop", "drop_close"):
                if behaviour == "drop":
                    writer.transport.abort()  # RST
                else:
                    writer.close()  # FIN in the middle of the body
                return False
            if i == 1 and behaviour == "streamerr":
                await self.write(writer, b'data: {"error": {"message": "fake engine failure", "code": 500}}\n\n')
                break
            if i == 1 and behaviour == "badjson":
                await self.write(writer, b"data: this is not json\n\n")
                break
        else:
            await self.write(writer, chunk(finish="length"))
            if behaviour != "nousage":
                await self.write(writer, chunk(usage={"prompt_tokens": ptoks, "completion_tokens": n,
                                                      "total_tokens": ptoks + n}, choices=False))
        if behaviour != "nodone":
            await self.write(writer, b"data: [DONE]\n\n")
        if a.close_delimited:
            writer.close()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ttft-ms", type=float, default=50)
    ap.add_argument("--itl-ms", type=float, default=10)
    ap.add_argument("--tokens-per-chunk", type=int, default=1)
    ap.add_argument("--mix", default="ok", help="behaviour cycle, e.g. ok:3,http500:1,stall:1")
    ap.add_argument("--fragment", action="store_true", help="split every write at random byte offsets")
    ap.add_argument("--close-delimited", action="store_true", help="no chunked encoding; close ends the body")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    server = FakeServer(args)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", args.port, backlog=1024)
    print("PORT", srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
