"""The Python side of `make bench`: times tomllib on the files bench_toml timed.

    tomllib_bench.py <iterations> <file>...

Files are read once before the clock starts, like bench_toml.  Python's standard library has
no TOML writer, so for the lock file only tomllib's parsing is timed while bv is timed parsing
and writing: the comparison favours tomllib.
"""
import sys
import time
import tomllib


def main() -> None:
    iterations = int(sys.argv[1])
    texts = [open(path, encoding="utf-8").read() for path in sys.argv[2:]]
    start = time.perf_counter()
    for _ in range(iterations):
        for text in texts:
            tomllib.loads(text)
    print(f"seconds={time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
