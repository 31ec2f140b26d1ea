"""The FUSE side of chaos.powerfs (fusepy): every call maps a mount path to the backing
path; data goes through the Overlay, names and attributes straight to the backing."""
from __future__ import annotations

import errno
import os

from fuse import FUSE, FuseOSError, Operations  # fusepy

from .powerfs import Overlay


class PowerFS(Operations):
    def __init__(self, backing: str) -> None:
        self.root = os.path.realpath(backing)
        self.overlay = Overlay()

    def _p(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def __call__(self, op, path, *args):
        try:
            return super().__call__(op, path, *args)
        except OSError as exc:
            if isinstance(exc, FuseOSError):
                raise
            raise FuseOSError(exc.errno or errno.EIO)

    # -- attributes and names: straight to the backing --
    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid",
                                             "st_atime", "st_mtime", "st_ctime", "st_size")}
        size = self.overlay.size(self._p(path))
        if size is not None:
            attrs["st_size"] = size
        return attrs

    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._p(path))

    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                            "f_favail", "f_ffree", "f_files", "f_flag",
                                            "f_frsize", "f_namemax")}

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), times)

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def unlink(self, path):
        os.unlink(self._p(path))
        self.overlay.forget(self._p(path))

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))
        self.overlay.rename(self._p(old), self._p(new))

    # -- files: data through the overlay --
    def open(self, path, flags):
        if flags & os.O_TRUNC:
            self.overlay.truncate(self._p(path), 0)
        return 0

    def create(self, path, mode, fi=None):
        fd = os.open(self._p(path), os.O_WRONLY | os.O_CREAT, mode)
        os.close(fd)
        return 0

    def read(self, path, size, offset, fh):
        return self.overlay.read(self._p(path), size, offset)

    def write(self, path, data, offset, fh):
        return self.overlay.write(self._p(path), data, offset)

    def truncate(self, path, length, fh=None):
        self.overlay.truncate(self._p(path), length)

    def fsync(self, path, datasync, fh):
        self.overlay.fsync(self._p(path))

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0


def mount(backing: str, mountpoint: str) -> None:
    """Serve until killed (foreground, one thread: every call in order)."""
    FUSE(PowerFS(backing), mountpoint, foreground=True, nothreads=True, allow_other=True,
         default_permissions=False, use_ino=False, attr_timeout=0, entry_timeout=0)
