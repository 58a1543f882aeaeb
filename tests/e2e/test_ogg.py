"""ogg.js, the Ogg demuxer of the Opus path, run in Chromium against what PyAV makes of the same bytes."""

from __future__ import annotations

import base64
import functools
import struct
from typing import Any

import av
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page

from bench.support.server import FIXTURES, Server

# Feeds the bytes to the demuxer in awkward pieces (a byte, a few, a page or more) and reports packets.
DEMUX = """async ([module, encoded, sizes]) => {
    const { OggDemuxer, isOpusHead, isOpusTags, parseOpusHead, opusPacketSamples } = await import(module);
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    const demuxer = new OggDemuxer();
    const packets = [];
    for (let at = 0, i = 0; at < bytes.length; i++) {
        const size = sizes[i % sizes.length];
        packets.push(...demuxer.push(bytes.slice(at, at + size)));
        at += size;
    }
    const audio = packets.filter((p) => !isOpusHead(p.data) && !isOpusTags(p.data));
    return {
        head: isOpusHead(packets[0].data) ? parseOpusHead(packets[0].data) : null,
        tags: isOpusTags(packets[1].data),
        sizes: audio.map((p) => p.data.length),
        samples: audio.map((p) => opusPacketSamples(p.data)),
        lastGranule: Number(audio.at(-1)?.granule ?? -1),
    };
}"""


def demux(page: Page, site: Server, data: bytes, sizes: list[int]) -> dict[str, Any]:
    page.goto(f"{site.url}/")
    module = f"{site.url}/static/speech/ogg.js"
    result: dict[str, Any] = page.evaluate(DEMUX, [module, base64.b64encode(data).decode(), sizes])
    return result


def test_packets_match_pyav(page: Page, site: Server) -> None:
    data = (FIXTURES / "sample.opus").read_bytes()
    with av.open(str(FIXTURES / "sample.opus")) as container:
        packets = [packet for packet in container.demux(audio=0) if packet.size]
    result = demux(page, site, data, [1, 7, 100, 4096, 27, 3])

    assert result["head"] == {"channels": 1, "preSkip": 312, "inputSampleRate": 48000, "mappingFamily": 0}
    assert result["tags"]
    assert result["sizes"] == [packet.size for packet in packets]
    # Every packet lasts what its TOC says; PyAV trims only the last one to the stream's end.
    assert result["samples"][:-1] == [packet.duration for packet in packets[:-1]]
    assert result["lastGranule"] - result["head"]["preSkip"] == sum(packet.duration or 0 for packet in packets)


def page_bytes(body: bytes, lacing: list[int], *, continued: bool = False, granule: int = 0) -> bytes:
    header = b"OggS" + struct.pack("<BBqIIIB", 0, int(continued), granule, 1, 0, 0, len(lacing))
    return header + bytes(lacing) + body


def test_packets_that_span_pages(page: Page, site: Server) -> None:
    big = bytes(range(256)) * 2 + bytes(88)  # 600 bytes: 255 + 255 on one page, 90 on the next
    exact = bytes([0xF8]) * 255  # 255 bytes: laced as 255 then 0
    stream = (
        page_bytes(b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 24000, 0, 0), [19])
        + page_bytes(big[:510], [255, 255])
        + page_bytes(big[510:] + exact, [90, 255, 0], continued=True, granule=960)
    )
    result = demux(page, site, stream, [5, 64])
    assert result["sizes"] == [600, 255]
    assert result["lastGranule"] == 960


@given(sizes=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=12))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_split_of_a_real_stream_gives_the_same_packets(page: Page, site: Server, sizes: list[int]) -> None:
    data = (FIXTURES / "sample.opus").read_bytes()
    if page.url == "about:blank":
        page.goto(f"{site.url}/")
    module = f"{site.url}/static/speech/ogg.js"
    result: dict[str, Any] = page.evaluate(DEMUX, [module, base64.b64encode(data).decode(), sizes])
    assert result["sizes"] == opus_packet_sizes()
    assert result["head"]["preSkip"] == 312


@functools.cache
def opus_packet_sizes() -> list[int]:
    with av.open(str(FIXTURES / "sample.opus")) as container:
        return [packet.size for packet in container.demux(audio=0) if packet.size]
