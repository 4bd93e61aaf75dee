"""hardware_events publisher: the kernel's uevent netlink socket (NETLINK_KOBJECT_UEVENT).

Two multicast groups carry device events: 1, the kernel's own messages ("ACTION@DEVPATH\\0KEY=VALUE..."),
and 2, udevd's re-broadcast after its rules ran ("libudev\\0" header, plus ID_* properties such as vendor
names and serials). osquery's udev publisher listens to udevd; we do too when udevd runs here
(/run/udev/control exists), and to the kernel group otherwise (containers, minimal hosts) — listening to
both would report every device twice. Messages are parsed by collector.tables._uevent and filtered as
osquery's subscriber filters them; vendor/model names missing from kernel messages come from the
usb.ids / pci.ids databases.

Forged events: any local root process can send to these groups, but an unprivileged one cannot; still, a
kernel-group message must come from netlink port 0 (the kernel) and a udev-group message must carry uid 0
credentials (SCM_CREDENTIALS), as udev itself checks. Others are dropped and counted.

Fail soft: when the socket cannot be opened (no netlink in this sandbox, seccomp, no permission), `start()`
logs one warning and returns False; the daemon keeps running and hardware_events stays empty.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from typing import Any

from collector.eventstore import EventStore
from collector.publishers import EventStatus
from collector.runtime import Runtime
from collector.tables import _hw, _uevent

log = logging.getLogger("quarry.publishers.uevent")

NETLINK_KOBJECT_UEVENT = 15
GROUP_KERNEL = 1
GROUP_UDEV = 2
TABLE = "hardware_events"
_RCVBUF = 4 << 20  # bursts at boot/coldplug are thousands of messages
_MAX_MESSAGE = 1 << 16
_DRAIN = 256  # messages read per wake-up before one store write
_UCRED = struct.Struct("iII")  # pid, uid, gid


class UeventPublisher:
    def __init__(self, store: EventStore, *, runtime: Runtime | None = None, source: str = "auto",
                 disabled_types: tuple[str, ...] = _uevent.DISABLED_TYPES, root: str = "/",
                 lookup_names: bool = True) -> None:
        """source: "kernel" (group 1), "udev" (group 2) or "auto" (udev when udevd runs, else kernel)."""
        if source not in ("auto", "kernel", "udev"):
            raise ValueError(f"uevent source must be auto, kernel or udev, not {source!r}")
        self.store = store
        self.status = EventStatus(runtime, TABLE)
        self.source = source
        self.disabled_types = disabled_types
        self.root = root.rstrip("/") or "/"
        self.lookup_names = lookup_names
        self.group = 0
        self.received = 0  # messages read from the socket
        self.dropped = 0  # forged or unparsable messages
        self.lost = 0  # kernel reported a receive-buffer overflow (ENOBUFS) this many times
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = threading.Event()

    # --- life cycle -----------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Open the socket and start the reader thread; False (one warning logged) when impossible here."""
        if self.active:
            return True
        group = self._choose_group()
        try:
            sock = self._open(group)
        except OSError as e:
            log.warning("hardware_events disabled: cannot open the kernel uevent netlink socket (group %d): "
                        "%s", group, e.strerror or e)
            self.status.set_active(False, 0)
            return False
        self._sock, self.group = sock, group
        self._stopping.clear()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, name="quarry-uevent", daemon=True)
        self._thread.start()
        self.status.set_active(True, 1)
        log.info("hardware_events: listening to %s uevents", "udev" if group == GROUP_UDEV else "kernel")
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("hardware_events: reader thread did not stop within %.1f s", timeout)
                return  # it owns the descriptors until it exits
            self._thread = None
        self._close()
        self.status.set_active(False)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _choose_group(self) -> int:
        if self.source == "kernel":
            return GROUP_KERNEL
        if self.source == "udev":
            return GROUP_UDEV
        return GROUP_UDEV if os.path.exists("/run/udev/control") else GROUP_KERNEL

    @staticmethod
    def _open(group: int) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        try:
            try:  # root may exceed rmem_max; others get what rmem_max allows
                sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            if group == GROUP_UDEV:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind((0, group))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    # --- reading --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                sock = self._sock
                if sock is None:
                    return
                ready, _, _ = select.select([sock, self._wake_r], [], [])
                if self._wake_r in ready or self._stopping.is_set():
                    return
                self._drain(sock)
        except Exception:  # noqa: BLE001 - thread boundary: log with context, never kill the daemon
            log.exception("hardware_events: uevent reader failed; hardware events are no longer collected")
            self.status.set_active(False)

    def _drain(self, sock: socket.socket) -> None:
        rows: list[dict[str, Any]] = []
        for _ in range(_DRAIN):
            try:
                data, ancdata, _flags, addr = sock.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(_UCRED.size))
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.lost += 1
                    if self.lost == 1:
                        log.warning("hardware_events: uevent receive buffer overflowed; some events were lost")
                    continue
                raise
            self.received += 1
            if not self._trusted(addr, ancdata):
                self.dropped += 1
                continue
            row = self.to_row(data)
            if row is not None:
                rows.append(row)
        if rows:
            added = self.store.add(TABLE, rows)
            self.status.added(added)

    def _trusted(self, addr: Any, ancdata: list[tuple[int, int, bytes]]) -> bool:
        if self.group == GROUP_KERNEL:
            return isinstance(addr, tuple) and addr[0] == 0  # sent by the kernel (port id 0)
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED.size:
                _pid, uid, _gid = _UCRED.unpack_from(data)
                return uid == 0
        return False

    def to_row(self, message: bytes, now: int | None = None) -> dict[str, Any] | None:
        """The hardware_events row of one netlink message, or None (not a uevent / filtered as osquery)."""
        props = _uevent.parse(message)
        if props is None:
            self.dropped += 1
            return None
        self.status.fired(1)
        names = self._names if self.lookup_names else None
        return _uevent.to_row(props, int(now if now is not None else time.time()), names, self.disabled_types)

    def _names(self, subsystem: str, vendor_id: str, model_id: str) -> tuple[str | None, str | None]:
        candidates = {"usb": _hw.USB_IDS, "pci": _hw.PCI_IDS}.get(subsystem)
        if candidates is None:
            return None, None
        db, _ = _hw.load_ids(self._real, candidates)
        if db is None:
            return None, None
        return db.vendor(vendor_id), db.device(vendor_id, model_id) if model_id else None

    def _real(self, host_path: str) -> str:
        return host_path if self.root == "/" else self.root + host_path
