#!/usr/bin/env python3
"""The workspace's crate graph and each crate's module graph, checked for cycles.

Usage:
    scripts/module-graph.py             # list crates, their path dependencies and module edges
    scripts/module-graph.py --check     # exit 1 and print the cycle if there is one
    scripts/module-graph.py --mermaid   # a mermaid `graph TD` for docs/architecture.md
    scripts/module-graph.py --no-tests  # (with any of the above) leave out #[cfg(test)] items

Options: --manifest-path PATH (a Cargo.toml of the workspace, default: the one above this
script), --all-edges (mermaid: keep the edges that others imply; by default each subgraph
shows its transitive reduction).

Crates: the workspace members and the path dependencies between them (every kind: normal,
build and dev), read from `cargo metadata --format-version 1 --no-deps`.

Modules: for each library or binary target, the file modules reachable from its root by
`mod name;` (name.rs or name/mod.rs). A module imports a sibling when its code names it by
`crate::`, `super::` (resolved against inline modules such as `mod tests`), `self::` or
`$crate::` paths, in `use` trees (grouped ones included: `use crate::{a, b::c}`) or inline
in code. Each path counts at the one level where source and target part: `crate::a::x`
named in `crate::b::y` is the edge b -> a among the crate's top-level modules;
`super::c` named in `crate::b::y` is y -> c among the submodules of b. A `pub use` of a
child's item in a folder module resolves to that child.

A cycle is two or more sibling modules importing each other in a circle, or crates that
depend on each other in a circle. `--check` prints
"module graph: N crates, M modules, no cycle" when there is none.

Standard library only; the Rust is read by a small tokenizer, not by rustc, so macros
that build paths out of fragments are not seen.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

# ---------------------------------------------------------------------------
# Tokens


IDENT = re.compile(r"r#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*")


def tokenize(text):
    """Rust source -> list of (token, line): identifiers, `::`, `$crate` and single
    punctuation characters; comments, strings, chars and numbers are dropped."""
    tokens = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c in "rb" and re.match(r'(br|r)#*"', text[i:i + 260]):
            m = re.match(r'(br|r)(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            line += text.count("\n", i, j)
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i)):
            i += 1 if c == '"' else 2
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                line += i < n and text[i] == "\n"
                i += 1
            i += 1
        elif c == "'" or (c == "b" and text.startswith("b'", i)):
            start = i + (1 if c == "'" else 2)
            m = re.match(r"(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[start:])
            if m:  # a char literal
                i = start + m.end()
            else:  # a lifetime or label
                i += 1
                m = IDENT.match(text, i)
                if m:
                    i = m.end()
        elif c.isdigit():
            m = re.match(r"[0-9][0-9a-zA-Z_]*(\.[0-9][0-9a-zA-Z_]*)?", text[i:])
            i += m.end()
        elif c == "$" and text.startswith("$crate", i):
            tokens.append(("crate", line))
            i += len("$crate")
        elif c == "_" or c.isalpha():
            m = IDENT.match(text, i)
            word = m.group(0)
            tokens.append((word[2:] if word.startswith("r#") else word, line))
            i = m.end()
        elif text.startswith("::", i):
            tokens.append(("::", line))
            i += 2
        else:
            tokens.append((c, line))
            i += 1
    return tokens


def is_ident(tok):
    return bool(IDENT.fullmatch(tok))


def drop_test_items(tokens):
    """Removes every item carrying #[cfg(test)] (with its other attributes)."""
    out, i, n = [], 0, len(tokens)
    pattern = ["#", "[", "cfg", "(", "test", ")", "]"]
    while i < n:
        if [t for t, _ in tokens[i:i + 7]] == pattern:
            j = i + 7
            while j < n and tokens[j][0] == "#":  # further attributes
                depth, j = 0, j + 1
                while j < n:
                    depth += {"[": 1, "]": -1}.get(tokens[j][0], 0)
                    j += 1
                    if depth == 0:
                        break
            depth = 0
            while j < n:
                t = tokens[j][0]
                j += 1
                if t == ";" and depth == 0:
                    break
                if t in "{([":
                    depth += 1
                elif t in "})]":
                    depth -= 1
                    if depth == 0 and t == "}":
                        break
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


# ---------------------------------------------------------------------------
# Paths in one file


def parse_use_tree(tokens, i, prefix, out):
    """Parses a use tree at tokens[i]; appends (segments, line) for each leaf to out and
    returns the index after the tree."""
    segs = list(prefix)
    line = tokens[i][1] if i < len(tokens) else 0
    while i < len(tokens):
        t = tokens[i][0]
        if t == "{":
            i += 1
            while i < len(tokens) and tokens[i][0] != "}":
                i = parse_use_tree(tokens, i, segs, out)
                if i < len(tokens) and tokens[i][0] == ",":
                    i += 1
            return i + 1
        if t == "*":
            out.append((segs, line))
            return i + 1
        if is_ident(t) and t != "as":
            segs.append(t)
            i += 1
            if i < len(tokens) and tokens[i][0] == "::":
                i += 1
                continue
            if i + 1 < len(tokens) and tokens[i][0] == "as":
                i += 2  # the alias
            out.append((segs, line))
            return i
        if t == "::":  # a leading `::`
            i += 1
            continue
        return i
    return i


def scan_file(tokens):
    """-> (paths, mods, reexports):
    paths: (inline, segments, line) for every path starting with crate, super or self,
      inline being the names of the inline modules (`mod x { ... }`) around it;
    mods: names of `mod name;` declared at file level;
    reexports: {name: first segments} for `pub use` at file level."""
    paths, mods, reexports = [], [], {}
    stack = []  # (inline module name or None, brace depth at its opening)
    depth, i, n = 0, 0, len(tokens)
    pending_mod = None
    pub = False
    while i < n:
        t, line = tokens[i]
        if t == "{":
            depth += 1
            if pending_mod is not None:
                stack.append((pending_mod, depth))
                pending_mod = None
            i += 1
            continue
        if t == "}":
            if stack and stack[-1][1] == depth:
                stack.pop()
            depth -= 1
            i += 1
            continue
        prev = tokens[i - 1][0] if i else ""
        if t == "mod" and i + 2 < n and is_ident(tokens[i + 1][0]):
            if tokens[i + 2][0] == ";":
                if not stack and depth == 0:
                    mods.append(tokens[i + 1][0])
                i += 3
                continue
            if tokens[i + 2][0] == "{":
                pending_mod = tokens[i + 1][0]
                i += 2
                continue
        inline = [name for name, _ in stack]
        if t == "use" and prev != "::":
            leaves = []
            i = parse_use_tree(tokens, i + 1, [], leaves)
            for segs, l in leaves:
                if segs and segs[0] in ("crate", "super", "self"):
                    paths.append((inline, segs, l))
                if pub and depth == 0 and segs and segs[-1] != "self":
                    reexports[segs[-1]] = segs
            pub = False
            continue
        if t == "pub":
            pub = True
            i += 1
            # pub(crate), pub(super), pub(in path)
            if i < n and tokens[i][0] == "(":
                while i < n and tokens[i][0] != ")":
                    i += 1
                i += 1
            continue
        pub = False
        if t in ("crate", "super", "self") and prev != "::" and i + 1 < n and tokens[i + 1][0] == "::":
            segs, j = [t], i + 1
            while j + 1 < n and tokens[j][0] == "::" and is_ident(tokens[j + 1][0]):
                segs.append(tokens[j + 1][0])
                j += 2
            paths.append((inline, segs, line))
            i = j
            continue
        i += 1
    return paths, mods, reexports


# ---------------------------------------------------------------------------
# Module trees


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of names below the crate root
        self.file = file
        self.children = {}
        self.paths = []
        self.reexports = {}


def child_dir(file, is_root):
    """The directory holding the submodules of the module in `file`."""
    base = os.path.basename(file)
    if is_root or base == "mod.rs":
        return os.path.dirname(file)
    return os.path.join(os.path.dirname(file), base[:-3])


def load_tree(root_file, no_tests):
    """The file modules of one crate target -> (root Module, [Module], [warnings])."""
    modules, warnings = [], []

    def load(path, file, is_root):
        mod = Module(path, file)
        modules.append(mod)
        with open(file, encoding="utf-8") as f:
            tokens = tokenize(f.read())
        if no_tests:
            tokens = drop_test_items(tokens)
        mod.paths, names, reexports = scan_file(tokens)
        folder = child_dir(file, is_root)
        for name in names:
            for candidate in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
                if os.path.isfile(candidate):
                    mod.children[name] = load(path + (name,), candidate, False)
                    break
            else:
                warnings.append(f"{file}: no file for `mod {name};`")
        # `pub use` of a child's item: the name leads to that child.
        for name, segs in reexports.items():
            first = segs[1] if segs[0] == "self" and len(segs) > 1 else segs[0]
            if first in mod.children and name not in mod.children:
                mod.reexports[name] = first
        return mod

    root = load((), root_file, True)
    return root, modules, warnings


def resolve(root, segs, here):
    """The module path that `segs`, named in module path `here`, points into (the deepest
    file module it names), or None when it leaves the crate's modules."""
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    else:
        base, rest = tuple(here), list(segs)
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    node = root
    for name in base:
        node = node.children.get(name) if node is not None else None
    if node is None:  # an inline module: its items are in the file module above it
        node = root
        found = ()
        for name in base:
            if name not in node.children:
                break
            node = node.children[name]
            found += (name,)
        return found
    target = base
    for name in rest:
        if name in node.children:
            node = node.children[name]
            target += (name,)
        elif name in node.reexports:
            target += (node.reexports[name],)
            break
        else:
            break
    return target


def module_edges(root, modules):
    """{parent path: {(from, to): (file, line)}} for sibling imports at every level."""
    edges = defaultdict(dict)
    for mod in modules:
        for inline, segs, line in mod.paths:
            here = mod.path + tuple(inline)
            target = resolve(root, segs, here)
            if target is None:
                continue
            src = mod.path
            k = 0
            while k < len(src) and k < len(target) and src[k] == target[k]:
                k += 1
            if k < len(src) and k < len(target):
                key = (src[k], target[k])
                edges[src[:k]].setdefault(key, (mod.file, line))
    return edges


# ---------------------------------------------------------------------------
# Graphs


def cycles(nodes, edges):
    """(a shortest cycle, its component) per strongly connected component of more than
    one node, or of one node with an edge to itself; the cycle lists its first node again
    at its end."""
    succ = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    index, low, on, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    found = []
    for comp in comps:
        members = set(comp)
        if len(comp) == 1 and comp[0] not in succ[comp[0]]:
            continue
        start = min(comp)
        # a shortest way back to start within the component
        prev, frontier, seen = {}, [start], {start}
        end = None
        while frontier and end is None:
            nxt = []
            for v in frontier:
                for w in sorted(succ[v]):
                    if w == start:
                        end = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if end is not None:
                    break
            frontier = nxt
        path = [end]
        while path[-1] != start:
            path.append(prev[path[-1]])
        path.reverse()
        found.append((path + [start], sorted(comp)))
    return found


def reduce_edges(edges):
    """The transitive reduction of an acyclic edge set (edges implied by longer ways out)."""
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    def reachable(a, skip):
        seen, todo = set(), [w for w in succ[a] if w != skip]
        while todo:
            v = todo.pop()
            if v not in seen:
                seen.add(v)
                todo.extend(succ[v])
        return seen

    return [(a, b) for a, b in edges if b not in reachable(a, b)]


# ---------------------------------------------------------------------------
# The workspace


def workspace(manifest_path, no_tests):
    cmd = ["cargo", "metadata", "--format-version", "1", "--no-deps"]
    if manifest_path:
        cmd += ["--manifest-path", manifest_path]
    meta = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    members = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]]
    by_dir = {os.path.dirname(p["manifest_path"]): p["name"] for p in members}
    crates = []
    for p in members:
        deps = []
        for d in p["dependencies"]:
            target = by_dir.get(os.path.normpath(d["path"])) if d.get("path") else None
            if target:
                deps.append((target, d["kind"] or "normal"))
        targets = []
        for t in p["targets"]:
            if set(t["kind"]) & {"lib", "rlib", "proc-macro", "bin"}:
                root, modules, warnings = load_tree(t["src_path"], no_tests)
                targets.append({
                    "kind": "bin" if "bin" in t["kind"] else "lib",
                    "name": t["name"],
                    "root": root,
                    "modules": modules,
                    "edges": module_edges(root, modules),
                    "warnings": warnings,
                })
        crates.append({"name": p["name"], "deps": deps, "targets": targets,
                       "dir": os.path.dirname(p["manifest_path"])})
    return meta["workspace_root"], crates


def target_label(crate, target):
    if len(crate["targets"]) > 1:
        return f"{crate['name']} ({target['kind']} {target['name']})"
    return crate["name"]


def level_name(parent):
    return "crate::" + "::".join(parent) if parent else "crate"


def all_cycles(crates):
    """[(description, [lines])] of every cycle in the crate graph and the module graphs."""
    found = []
    crate_edges = {}
    for c in crates:
        for dep, kind in c["deps"]:
            crate_edges.setdefault((c["name"], dep), kind)
    for cyc, comp in cycles([c["name"] for c in crates], crate_edges):
        lines = []
        if len(comp) > len(cyc) - 1:
            lines.append("in a circle of " + ", ".join(comp) + "; one way round:")
        for a, b in zip(cyc, cyc[1:]):
            lines.append(f"{a} -> {b}  ({crate_edges[(a, b)]} dependency)")
        found.append(("crates: " + " -> ".join(cyc), lines))
    for c in crates:
        for t in c["targets"]:
            for parent, edges in sorted(t["edges"].items()):
                nodes = {a for a, _ in edges} | {b for _, b in edges}
                for cyc, comp in cycles(nodes, edges):
                    lines = []
                    if len(comp) > len(cyc) - 1:
                        lines.append("in a circle of " + ", ".join(comp) + "; one way round:")
                    for a, b in zip(cyc, cyc[1:]):
                        file, line = edges[(a, b)]
                        lines.append(f"{a} -> {b}  ({os.path.relpath(file)}:{line})")
                    found.append((f"{target_label(c, t)}, modules of {level_name(parent)}: "
                                  + " -> ".join(cyc), lines))
    return found


def slug(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def mermaid(crates, all_edges):
    out = ["graph TD"]
    if not all_edges:
        out.append("    %% edges implied by other edges are left out (--all-edges keeps them)")
    crate_edges = {}
    for c in crates:
        for dep, kind in c["deps"]:
            crate_edges.setdefault((c["name"], dep), kind)
    for c in crates:
        for t in c["targets"]:
            sid = slug(c["name"] if len(c["targets"]) == 1 else f"{c['name']}_{t['name']}")
            out.append(f'    subgraph {sid}["{target_label(c, t)}"]')
            top = sorted(t["root"].children)
            for m in top:
                out.append(f'        {sid}__{slug(m)}["{m}"]')
            edges = sorted(t["edges"].get((), {}))
            if not all_edges and not cycles(top, edges):
                edges = reduce_edges(edges)
            for a, b in sorted(edges):
                out.append(f"        {sid}__{slug(a)} --> {sid}__{slug(b)}")
            out.append("    end")
    edges = sorted(crate_edges)
    if not all_edges and not cycles([c["name"] for c in crates], edges):
        edges = reduce_edges(edges)
    for a, b in edges:
        arrow = "-.->|dev|" if crate_edges[(a, b)] == "dev" else "==>"
        out.append(f"    {slug(a)} {arrow} {slug(b)}")
    return "\n".join(out)


def listing(crates):
    out = []
    for c in crates:
        deps = ", ".join(f"{d}" + ("" if k == "normal" else f" ({k})") for d, k in c["deps"])
        out.append(f"{c['name']} -> {deps or '(none)'}")
        for t in c["targets"]:
            out.append(f"  {t['kind']} {t['name']}: {len(t['modules'])} modules")
            for parent, edges in sorted(t["edges"].items()):
                out.append(f"    {level_name(parent)}:")
                for (a, b), (file, line) in sorted(edges.items()):
                    out.append(f"      {a} -> {b}  ({os.path.relpath(file)}:{line})")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when there is a cycle")
    ap.add_argument("--mermaid", action="store_true", help="print a mermaid graph TD")
    ap.add_argument("--all-edges", action="store_true", help="mermaid: keep implied edges")
    ap.add_argument("--no-tests", action="store_true", help="leave out #[cfg(test)] items")
    ap.add_argument("--manifest-path", help="Cargo.toml of the workspace")
    args = ap.parse_args()
    manifest = args.manifest_path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Cargo.toml")
    _, crates = workspace(manifest, args.no_tests)
    for c in crates:
        for t in c["targets"]:
            for w in t["warnings"]:
                print("warning:", w, file=sys.stderr)
    if args.mermaid:
        print(mermaid(crates, args.all_edges))
    if args.check:
        found = all_cycles(crates)
        n_modules = sum(len(t["modules"]) for c in crates for t in c["targets"])
        if found:
            for title, lines in found:
                print("cycle:", title)
                for line in lines:
                    print("   ", line)
            print(f"module graph: {len(crates)} crates, {n_modules} modules, {len(found)} cycle(s)")
            return 1
        print(f"module graph: {len(crates)} crates, {n_modules} modules, no cycle")
    if not args.mermaid and not args.check:
        print(listing(crates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
