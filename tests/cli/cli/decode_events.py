#!/usr/bin/env python3
"""Decode a provium event stream (4-byte big-endian length + msgpack map per
frame) from a file or stdin; print one JSON line per frame. A tiny msgpack
decoder so the tests need no python module. Exit 1 on a framing error."""
import json, struct, sys

def dec(b, i):
    t = b[i]; i += 1
    if t <= 0x7f: return t, i
    if 0x80 <= t <= 0x8f: return dmap(b, i, t & 0x0f)
    if 0x90 <= t <= 0x9f: return darr(b, i, t & 0x0f)
    if 0xa0 <= t <= 0xbf: n = t & 0x1f; return b[i:i+n].decode('utf-8', 'replace'), i + n
    if t >= 0xe0: return t - 0x100, i
    if t == 0xc0: return None, i
    if t == 0xc2: return False, i
    if t == 0xc3: return True, i
    fixed = {0xcc: ('>B', 1), 0xcd: ('>H', 2), 0xce: ('>I', 4), 0xcf: ('>Q', 8),
             0xd0: ('>b', 1), 0xd1: ('>h', 2), 0xd2: ('>i', 4), 0xd3: ('>q', 8),
             0xca: ('>f', 4), 0xcb: ('>d', 8)}
    if t in fixed:
        f, n = fixed[t]; return struct.unpack(f, b[i:i+n])[0], i + n
    lens = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}
    if t in lens:
        k = lens[t]; n = int.from_bytes(b[i:i+k], 'big'); i += k
        s = b[i:i+n]
        return (s.decode('utf-8', 'replace') if t >= 0xd9 else s.hex()), i + n
    if t in (0xdc, 0xdd):
        k = 2 if t == 0xdc else 4; return darr(b, i + k, int.from_bytes(b[i:i+k], 'big'))
    if t in (0xde, 0xdf):
        k = 2 if t == 0xde else 4; return dmap(b, i + k, int.from_bytes(b[i:i+k], 'big'))
    raise ValueError('unsupported msgpack type 0x%02x' % t)

def darr(b, i, n):
    out = []
    for _ in range(n):
        v, i = dec(b, i); out.append(v)
    return out, i

def dmap(b, i, n):
    out = {}
    for _ in range(n):
        k, i = dec(b, i); v, i = dec(b, i); out[k] = v
    return out, i

data = (open(sys.argv[1], 'rb') if len(sys.argv) > 1 and sys.argv[1] != '-' else sys.stdin.buffer).read()
i = 0
while i < len(data):
    if i + 4 > len(data): sys.exit('truncated length prefix at %d' % i)
    n = int.from_bytes(data[i:i+4], 'big'); i += 4
    if i + n > len(data): sys.exit('truncated frame at %d' % i)
    v, end = dec(data, i)
    if end != i + n: sys.exit('frame body length mismatch at %d' % i)
    print(json.dumps(v, sort_keys=True)); i += n
