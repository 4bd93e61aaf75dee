"""magic: libmagic's description, MIME type and MIME encoding of the files named by `path =`.

Bound with ctypes to Debian's libmagic1 (libmagic.so.1), so no Python binding is needed. As osquery: the
magic database is the `magic_db_files` constraint (colon-separated) if given, else the first database
file found among osquery's defaults; the row echoes it. `path` is required; one cookie per query.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table

SPEC = table(
    'magic',
    'Magic number recognition library table.',
    columns=[
        col('path', TEXT, 'Absolute path to target file', index=True, required=True),
        col('magic_db_files', TEXT, 'Colon(:) separated list of files where the magic db file can be found. By default one of the following is used: /usr/share/file/magic/magic, /usr/share/misc/magic or /usr/share/misc/magic.mgc', additional=True),
        col('data', TEXT, 'Magic number data from libmagic'),
        col('mime_type', TEXT, 'MIME type data from libmagic'),
        col('mime_encoding', TEXT, 'MIME encoding data from libmagic'),
    ],
    platforms=('darwin', 'linux'),
)

# osquery's defaults, but only files: on Debian /usr/share/misc/magic is an empty directory.
DEFAULT_DBS = ("/usr/share/misc/magic.mgc", "/usr/share/file/magic.mgc", "/usr/share/misc/magic",
               "/usr/share/file/magic/magic")
_MAGIC_NONE, _MAGIC_MIME_TYPE, _MAGIC_MIME_ENCODING = 0x0, 0x10, 0x400
_lib: ctypes.CDLL | None | bool = None


def _libmagic() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("magic") or "libmagic.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            _lib = False
            return None
        lib.magic_open.restype = ctypes.c_void_p
        lib.magic_open.argtypes = [ctypes.c_int]
        lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.magic_file.restype = ctypes.c_char_p
        lib.magic_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.magic_setflags.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.magic_error.restype = ctypes.c_char_p
        lib.magic_error.argtypes = [ctypes.c_void_p]
        lib.magic_close.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib or None


def generate(ctx: Context) -> Iterator[Row]:
    paths = ctx.eq("path")
    if not paths:
        return  # osquery answers only `path =`/IN (LIKE is not expanded for magic)
    lib = _libmagic()
    if lib is None:
        ctx.missing(["data", "mime_type", "mime_encoding"], "libmagic.so.1 not found (apt install libmagic1)")
        return
    dbs = ctx.eq("magic_db_files")
    db = ":".join(sorted(str(d) for d in dbs)) if dbs else next((d for d in DEFAULT_DBS if os.path.isfile(d)), "")
    cookie = lib.magic_open(_MAGIC_NONE)
    if not cookie:
        ctx.note("libmagic could not be initialised")
        return
    try:
        if lib.magic_load(cookie, db.encode() if db else None) != 0:
            err = lib.magic_error(cookie)
            ctx.note(f"cannot load magic database {db or '(default)'}: {(err or b'').decode(errors='replace')}")
            return
        for path in sorted(str(p) for p in paths):
            real = os.fsencode(ctx.path(path))
            row: Row = {"path": path, "magic_db_files": db}
            for column, flags in (("data", _MAGIC_NONE), ("mime_type", _MAGIC_MIME_TYPE),
                                  ("mime_encoding", _MAGIC_MIME_ENCODING)):
                if not ctx.used(column):
                    continue
                lib.magic_setflags(cookie, flags)
                out = lib.magic_file(cookie, real)
                row[column] = out.decode("utf-8", "replace") if out is not None else None
            yield row
    finally:
        lib.magic_close(cookie)
