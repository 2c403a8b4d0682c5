"""Where a key is in TOML text: the line of `databases[0].grants[3].profile`, for error messages.

tomllib gives values, not positions; this scanner reads the text once more and notes the line of
every table header, key, array element and inline-table key, by the path pydantic reports."""

from __future__ import annotations

from collections.abc import Sequence

Path = tuple[int | str, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def locate(text: str, loc: Sequence[int | str]) -> int | None:
    """The line (1-based) of `loc`, else of the nearest enclosing key that is written down (a
    table's first key, else its header)."""
    scanner = _Scanner(text)
    lines = scanner.run()
    path: Path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        if path in scanner.headers:
            return scanner.headers[path]
        path = path[:-1]
    return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.t, self.i, self.line = text, 0, 1
        self.lines: dict[Path, int] = {}
        self.headers: dict[Path, int] = {}  # [table] and [[array]] lines
        self.arrays: dict[Path, int] = {}  # array-of-tables path -> its last index

    def run(self) -> dict[Path, int]:
        prefix: Path = ()
        try:
            while True:
                self._space(newlines=True)
                if self.i >= len(self.t):
                    break
                if self.t[self.i] == "[":
                    prefix = self._header()
                else:
                    self._keyvalue(prefix)
        except IndexError:
            pass  # unterminated text: tomllib has said so already
        return self.lines

    def _note(self, path: Path) -> None:
        self.lines.setdefault(path, self.line)

    def _resolve(self, parts: Sequence[str]) -> Path:
        path: Path = ()
        for part in parts:
            path = (*path, part)
            if path in self.arrays:
                path = (*path, self.arrays[path])
        return path

    def _header(self) -> Path:
        double = self.t.startswith("[[", self.i)
        self.i += 2 if double else 1
        parts = self._key()
        self.i = self.t.index("]]" if double else "]", self.i) + (2 if double else 1)
        if double:
            parent = self._resolve(parts[:-1])
            array = (*parent, parts[-1])
            self.arrays[array] = self.arrays.get(array, -1) + 1
            self.headers.setdefault(array, self.line)
            path: Path = (*array, self.arrays[array])
        else:
            path = self._resolve(parts)
        self.headers.setdefault(path, self.line)
        return path

    def _keyvalue(self, prefix: Path) -> None:
        if prefix:
            self._note(prefix)  # a table's line is its first key's (where its content starts)
        parts = self._key()
        path: Path = (*prefix, *parts)
        self._note(path)
        self._space()
        if self.t[self.i] == "=":
            self.i += 1
        self._value(path)

    def _key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self._space()
            ch = self.t[self.i]
            if ch in "\"'":
                parts.append(self._string())
            else:
                start = self.i
                while self.i < len(self.t) and self.t[self.i] in _BARE:
                    self.i += 1
                parts.append(self.t[start : self.i])
                if start == self.i:  # not a key: skip the line
                    self.i += 1
                    return parts
            self._space()
            if self.i < len(self.t) and self.t[self.i] == ".":
                self.i += 1
                continue
            return parts

    def _value(self, path: Path) -> None:
        self._space()
        ch = self.t[self.i]
        if ch == "{":
            self.i += 1
            while True:
                self._space(newlines=True)
                if self.t[self.i] == "}":
                    self.i += 1
                    return
                if self.t[self.i] == ",":
                    self.i += 1
                    continue
                self._keyvalue(path)
        elif ch == "[":
            self._array(path)
        elif ch in "\"'":
            self._string()
        else:
            while self.i < len(self.t) and self.t[self.i] not in ",]}\n#":
                self.i += 1

    def _array(self, path: Path) -> None:
        self.i += 1
        index = 0
        while True:
            self._space(newlines=True)
            ch = self.t[self.i]
            if ch == "]":
                self.i += 1
                return
            if ch == ",":
                self.i += 1
                index += 1
                continue
            self._note((*path, index))
            self._value((*path, index))

    def _string(self) -> str:
        quote = self.t[self.i]
        if self.t.startswith(quote * 3, self.i):
            end = self.t.index(quote * 3, self.i + 3)
            value = self.t[self.i + 3 : end]
            self.line += value.count("\n")
            self.i = end + 3
            return value
        self.i += 1
        out = []
        while self.t[self.i] != quote:
            if quote == '"' and self.t[self.i] == "\\":
                self.i += 1
            out.append(self.t[self.i])
            self.i += 1
        self.i += 1
        return "".join(out)

    def _space(self, *, newlines: bool = False) -> None:
        while self.i < len(self.t):
            ch = self.t[self.i]
            if ch == "#":
                while self.i < len(self.t) and self.t[self.i] != "\n":
                    self.i += 1
            elif ch == "\n" and newlines:
                self.line += 1
                self.i += 1
            elif ch in " \t\r" or (ch == "\n" and newlines):
                self.i += 1
            else:
                return
