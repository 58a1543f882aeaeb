"""A freed large block goes back to the system at once, whatever blocks were freed before it."""

from __future__ import annotations

import subprocess
import sys

from bench.support.server import ROOT

# Frees one large block (glibc then raises its mmap threshold to that size), then holds 64 blocks
# of 1 MiB with a small allocation after each, frees the large ones and prints how many MiB stayed.
SCRIPT = """
import sys
from pathlib import Path
from speech import memory

def rss():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

if sys.argv[1] == "tuned":
    assert memory.return_large_blocks_promptly()
del sys.argv
big = b"x" * (20 << 20)
del big
before = rss()
blocks, pins = [], []
for _ in range(64):
    blocks.append(b"x" * (1 << 20))
    pins.append(b"x" * 1000)
del blocks
print(rss() - before)
"""


def stays_resident(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(result.stdout)


def test_large_blocks_are_returned_once_freed() -> None:
    assert stays_resident("default") > 16  # glibc's own behaviour: many freed blocks stay in its heap
    assert stays_resident("tuned") < 4


# Fills malloc's heaps with 100 KiB blocks (below the mmap threshold), each followed by a small
# block that stays, frees the large ones, then prints the MiB still resident before and after the trim.
TRIM = """
from pathlib import Path
from speech import memory

def rss():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

assert memory.return_large_blocks_promptly()
before = rss()
blocks, pins = [], []
for _ in range(640):
    blocks.append(bytearray(100 << 10))
    pins.append(bytearray(1000))
del blocks
kept = rss() - before
assert memory.give_back_free_pages()
print(kept, rss() - before)
"""


def test_free_pages_inside_the_heaps_go_back() -> None:
    result = subprocess.run([sys.executable, "-c", TRIM], cwd=ROOT, capture_output=True, text=True, check=True)
    kept, after_trim = map(float, result.stdout.split())
    assert kept > 40  # freed, but held between the small blocks that stay
    assert after_trim < 8


# Runs the piper voice's own ONNX session on 80 inputs, each a different number of phonemes, and
# prints how much more native heap is in use after them than after a warm-up at the longest.
SHAPES = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
import numpy as np
from bench.native_growth import heap_in_use_mib
from speech.engines.base import get_engine

session = get_engine("piper").resolve("alloy").wide.session

def run(length):
    ids = np.arange(1, length + 1, dtype=np.int64)[None, :] % 50 + 1
    scales = np.array([0.667, 1.0, 0.8], dtype=np.float32)
    session.run(None, {"input": ids, "input_lengths": np.array([length], dtype=np.int64), "scales": scales})

for _ in range(3):
    run(100)  # the arena grows to the longest input first
before = heap_in_use_mib()
for length in range(20, 100):
    run(length)
print(heap_in_use_mib() - before)
"""


def test_varied_input_lengths_do_not_grow_the_voice() -> None:
    result = subprocess.run([sys.executable, "-c", SHAPES], cwd=ROOT, capture_output=True, text=True, check=True)
    # With ONNX Runtime's memory patterns on, each new length kept ~40 KiB: ~3 MiB here.
    assert float(result.stdout.strip().splitlines()[-1]) < 1.0


# Phonemises 3,000 words one at a time, as word timings do, and prints the native heap added.
WORDS = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from bench.native_growth import heap_in_use_mib
from speech.engines.base import get_engine

voice = get_engine("piper").resolve("alloy")
words = "the quick brown fox jumps over a lazy dog while seven hundred people watched".split()
for word in words:
    voice._phonemes(word)
before = heap_in_use_mib()
for _ in range(3000 // len(words)):
    for word in words:
        voice._phonemes(word)
print(heap_in_use_mib() - before)
"""


def test_phonemising_word_by_word_does_not_grow_the_heap() -> None:
    result = subprocess.run([sys.executable, "-c", WORDS], cwd=ROOT, capture_output=True, text=True, check=True)
    # espeak-ng kept a copy of the voice for every call that set it: ~4 MiB here.
    assert float(result.stdout.strip().splitlines()[-1]) < 1.0
