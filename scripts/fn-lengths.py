#!/usr/bin/env python3
"""Lengths of the Rust functions under the given folders (default: crates/*/src), in lines
from the `fn` line to its closing brace, tests included. Prints the median, the longest
and every function over --max lines; exits 1 when the median is over --median or any
function is over --max.

    scripts/fn-lengths.py                      # report
    scripts/fn-lengths.py --median 10 --max 80 # the gates of the test command
"""
import argparse
import glob
import re
import statistics
import sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')


def strip(line):
    """The line without string contents and comments, so braces in them are not counted."""
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    return line.split('//')[0]


def functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, j, opened = 0, i, False
        while j < len(lines):
            s = strip(lines[j])
            if not opened and ';' in s and '{' not in s:
                break  # a declaration without body (trait method, extern)
            depth += s.count('{') - s.count('}')
            opened = opened or '{' in s
            if opened and depth <= 0:
                out.append((j - i + 1, f'{path}:{i + 1}', m.group(7)))
                break
            j += 1
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dirs', nargs='*', default=sorted(glob.glob('crates/*/src')))
    ap.add_argument('--median', type=float)
    ap.add_argument('--max', type=int, default=80)
    ap.add_argument('--top', type=int, default=10)
    a = ap.parse_args()
    fns = [f for d in a.dirs for p in sorted(glob.glob(d + '/**/*.rs', recursive=True)) for f in functions(p)]
    if not fns:
        print('no functions found', file=sys.stderr)
        return 1
    fns.sort(reverse=True)
    median = statistics.median(n for n, _, _ in fns)
    print(f'{len(fns)} functions, median {median} lines, longest {fns[0][0]} ({fns[0][2]} at {fns[0][1]})')
    for n, where, name in fns[:a.top]:
        print(f'  {n:4} {name} {where}')
    over = [f for f in fns if f[0] > a.max]
    bad = bool(over) or (a.median is not None and median > a.median)
    for n, where, name in over:
        print(f'over {a.max}: {n} {name} {where}')
    return 1 if bad else 0


sys.exit(main())
