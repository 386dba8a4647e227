using System.Runtime.InteropServices;
using System.Text;

namespace PgState.Engine.Host;

public enum PosixFileKind
{
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

/// <summary>What stat(2) says about a path: kind, owner, group, permission bits, size, device.</summary>
public sealed record PosixStat(PosixFileKind Kind, uint Uid, uint Gid, int Mode, long Size, ulong Inode, ulong Device, DateTimeOffset Modified);

/// <summary>
/// The few system calls pgstate needs to read a host without spawning a process (stat, xattrs,
/// user and group names) and to write safely (chown, link, fsync of a directory). glibc ≥ 2.28
/// (RHEL 8, Debian 10): statx rather than stat, which older glibc does not export.
/// </summary>
public static partial class Posix
{
    private const string LibC = "libc.so.6";
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int ENOENT = 2;
    private const int ENODATA = 61;
    private const int ENOTSUP = 95;
    private const int ERANGE = 34;

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint lgetxattr(string path, string name, byte* value, nint size);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lsetxattr(string path, string name, byte* value, nint size, int flags);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldpath, string newpath);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(int dirfd, string path, int flags, uint mode);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdirat(int dirfd, string path, uint mode);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport(LibC)]
    private static partial uint geteuid();

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fchown(int fd, uint owner, uint group);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fchmod(int fd, uint mode);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int fsetxattr(int fd, string name, byte* value, nint size, int flags);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int initgroups(string user, uint group);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int setresgid(uint real, uint effective, uint saved);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int setresuid(uint real, uint effective, uint saved);

    [LibraryImport(LibC, SetLastError = true)]
    private static unsafe partial int getresuid(uint* real, uint* effective, uint* saved);

    [LibraryImport(LibC, SetLastError = true)]
    private static unsafe partial int getpwuid_r(uint uid, byte* pwd, byte* buf, nint buflen, byte** result);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int getpwnam_r(string name, byte* pwd, byte* buf, nint buflen, byte** result);

    [LibraryImport(LibC, SetLastError = true)]
    private static unsafe partial int getgrgid_r(uint gid, byte* grp, byte* buf, nint buflen, byte** result);

    [LibraryImport(LibC, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int getgrnam_r(string name, byte* grp, byte* buf, nint buflen, byte** result);

    public static uint EffectiveUid => geteuid();

    public static bool IsRoot => geteuid() == 0;

    /// <summary>True once a root process became another user (<see cref="BecomeUser"/>): what it prints for the operator to type says runuser.</summary>
    public static bool StartedAsRoot { get; private set; }

    /// <summary>stat (or lstat with followLinks false); null when the path does not exist.</summary>
    public static PosixStat? Stat(string path, bool followLinks = true) => StatCore(AtFdCwd, path, followLinks ? 0 : AtSymlinkNoFollow);

    private static unsafe PosixStat? StatCore(int dirfd, string path, int flags)
    {
        var buffer = stackalloc byte[256];
        if (statx(dirfd, path, flags, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is ENOENT or 20 /* ENOTDIR */ ? null : throw new IOException($"stat {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        var mode = *(ushort*)(buffer + 28);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => PosixFileKind.Regular,
            0x4000 => PosixFileKind.Directory,
            0xA000 => PosixFileKind.Symlink,
            0x1000 => PosixFileKind.Fifo,
            0xC000 => PosixFileKind.Socket,
            0x2000 => PosixFileKind.CharDevice,
            0x6000 => PosixFileKind.BlockDevice,
            _ => PosixFileKind.Other,
        };
        var mtimeSeconds = *(long*)(buffer + 112);
        var mtimeNanos = *(uint*)(buffer + 120);
        var device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return new PosixStat(kind, *(uint*)(buffer + 20), *(uint*)(buffer + 24), mode & 0xFFF, *(long*)(buffer + 40), *(ulong*)(buffer + 32), device,
            DateTimeOffset.FromUnixTimeSeconds(mtimeSeconds).AddTicks(mtimeNanos / 100));
    }

    public static PosixFileKind? FileKind(string path, bool followLinks = true) => Stat(path, followLinks)?.Kind;

    /// <summary>lstat of a name in an open directory; null when it is not there.</summary>
    public static PosixStat? StatAt(Microsoft.Win32.SafeHandles.SafeFileHandle directory, string name) =>
        StatCore((int)directory.DangerousGetHandle(), name, AtSymlinkNoFollow);

    /// <summary>
    /// Opens a regular file for reading without ever blocking on it (O_NONBLOCK: a FIFO planted in its
    /// place does not hang the run) and checks what was opened (fstat), not what the name was a moment ago.
    /// </summary>
    public static unsafe Microsoft.Win32.SafeHandles.SafeFileHandle OpenRegular(string path, bool followLinks, out long size)
    {
        const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, AT_EMPTY_PATH = 0x1000;
        var fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW));
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                ENOENT => new FileNotFoundException($"{path}: no such file", path),
                40 /* ELOOP */ => new IOException($"{path} is a symbolic link; it is not followed here"),
                13 /* EACCES */ => new UnauthorizedAccessException($"{path}: permission denied"),
                _ => new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}"),
            };
        }
        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        var buffer = stackalloc byte[256];
        if (statx(fd, "", AT_EMPTY_PATH, StatxBasicStats, buffer) != 0 || (*(ushort*)(buffer + 28) & 0xF000) != 0x8000)
        {
            handle.Dispose();
            throw new IOException($"{path} is not a regular file");
        }
        size = *(long*)(buffer + 40);
        return handle;
    }

    /// <summary>The security.selinux label of a path (not following a final symlink), or null when it has none.</summary>
    public static unsafe string? SelinuxLabel(string path)
    {
        var buffer = stackalloc byte[512];
        var n = lgetxattr(path, "security.selinux", buffer, 512);
        if (n < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is ENODATA or ENOTSUP or ENOENT or ERANGE ? null : throw new IOException($"getxattr {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        var length = (int)n;
        while (length > 0 && buffer[length - 1] == 0)
        {
            length--;
        }
        return length == 0 ? null : Encoding.UTF8.GetString(buffer, length);
    }

    /// <summary>Sets security.selinux (kept when pgstate replaces a file); false where the filesystem has no labels.</summary>
    public static unsafe bool SetSelinuxLabel(string path, string label)
    {
        var bytes = Encoding.UTF8.GetBytes(label + "\0");
        fixed (byte* p = bytes)
        {
            if (lsetxattr(path, "security.selinux", p, bytes.Length, 0) == 0)
            {
                return true;
            }
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno == ENOTSUP ? false : throw new IOException($"setxattr {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>Owner, group and SELinux label of an open file: the file pgstate opened, whatever the name points at by now.</summary>
    public static unsafe void Own(Microsoft.Win32.SafeHandles.SafeFileHandle file, (uint Uid, uint Gid)? owner, string? label)
    {
        var fd = (int)file.DangerousGetHandle();
        if (owner is { } o && fchown(fd, o.Uid, o.Gid) != 0)
        {
            throw new IOException($"fchown: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        if (label is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(label + "\0");
            fixed (byte* p = bytes)
            {
                if (fsetxattr(fd, "security.selinux", p, bytes.Length, 0) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != ENOTSUP)
                {
                    throw new IOException($"fsetxattr: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
            }
        }
    }

    /// <summary>
    /// Makes the whole process <paramref name="user"/> for good (supplementary groups, gid, uid: real,
    /// effective and saved; glibc applies them to every thread), as a unit's User= would start it, and
    /// checks that root cannot be regained. HOME, USER and LOGNAME follow, for the child processes.
    /// </summary>
    public static unsafe void BecomeUser(string user, string? group)
    {
        var entry = User(user) ?? throw new Diagnostics.PgStateException($"no user {user} on this host");
        var gid = group is null ? entry.Gid : Group(group) ?? throw new Diagnostics.PgStateException($"no group {group} on this host");
        if (initgroups(user, gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(entry.Uid, entry.Uid, entry.Uid) != 0)
        {
            throw new Diagnostics.PgStateException($"cannot become {user}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        uint real, effective, saved;
        if (getresuid(&real, &effective, &saved) != 0 || real != entry.Uid || effective != entry.Uid || saved != entry.Uid
            || (entry.Uid != 0 && setresuid(0, 0, 0) == 0))
        {
            throw new Diagnostics.PgStateException($"cannot become {user}: the process kept other user ids; stopping");
        }
        StartedAsRoot = true;
        // Root's working directory (sudo -i: /root) is not the user's to enter, and every child starts in it.
        Directory.SetCurrentDirectory("/");
        Environment.SetEnvironmentVariable("HOME", entry.Home);
        Environment.SetEnvironmentVariable("USER", user);
        Environment.SetEnvironmentVariable("LOGNAME", user);
    }

    /// <summary>The working directory of a process (a postmaster's is its data directory); null when it is gone or not ours to read.</summary>
    public static string? ProcessDirectory(int pid)
    {
        try
        {
            return new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private const int ORdOnly = 0, OWrOnly = 1, OCreat = 0x40, OExcl = 0x80, ODirectory = 0x10000, ONoFollow = 0x20000, OCloExec = 0x80000;

    /// <summary>
    /// Opens a directory by walking its path from / one component at a time, never following a
    /// link (O_NOFOLLOW on every step, not only the last): a component swapped for a link after the
    /// path was checked is an error, not a detour. Missing components are made (mkdirat) when asked,
    /// with <paramref name="mode"/> for the last one and 0755 for parents. The path must be absolute
    /// and free of links (HostFiles.ResolveLinks gives such a path).
    /// </summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle OpenDirectoryNoLinks(string path, bool create = false, int mode = 0b111_101_101)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var fd = open("/", ORdOnly | ODirectory | OCloExec);
        if (fd < 0)
        {
            throw new IOException($"open /: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        for (var i = 0; i < parts.Length; i++)
        {
            var part = parts[i];
            if (part is "." or "..")
            {
                close(fd);
                throw new IOException($"{path}: '{part}' in a path pgstate walks; give the real path");
            }
            var next = openat(fd, part, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);
            if (next < 0 && Marshal.GetLastPInvokeError() == ENOENT && create)
            {
                var last = i == parts.Length - 1;
                if (mkdirat(fd, part, last ? (uint)mode : 0b111_101_101) != 0 && Marshal.GetLastPInvokeError() != 17 /* EEXIST */)
                {
                    var error = Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
                    close(fd);
                    throw new IOException($"mkdir {"/" + string.Join('/', parts[..(i + 1)])}: {error}");
                }
                next = openat(fd, part, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);
            }
            if (next < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                close(fd);
                var at = "/" + string.Join('/', parts[..(i + 1)]);
                throw errno switch
                {
                    40 or 20 /* ELOOP, ENOTDIR */ => new IOException($"{at} is not a directory (a link or a file where a directory was checked a moment ago); nothing followed"),
                    ENOENT => new DirectoryNotFoundException($"{at} does not exist"),
                    _ => new IOException($"open {at}: {Marshal.GetPInvokeErrorMessage(errno)}"),
                };
            }
            close(fd);
            fd = next;
        }
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A new file in an open directory, created exclusively (O_EXCL, no link followed) with <paramref name="mode"/>.</summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle CreateExclusiveAt(Microsoft.Win32.SafeHandles.SafeFileHandle directory, string name, int mode)
    {
        var fd = openat((int)directory.DangerousGetHandle(), name, OWrOnly | OCreat | OExcl | ONoFollow | OCloExec, (uint)mode);
        if (fd < 0)
        {
            throw new IOException($"create {name}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>rename within one open directory: names are looked up in it, not through the path it was opened by.</summary>
    public static void RenameAt(Microsoft.Win32.SafeHandles.SafeFileHandle directory, string from, string to)
    {
        var fd = (int)directory.DangerousGetHandle();
        if (renameat(fd, from, fd, to) != 0)
        {
            throw new IOException($"rename {from} to {to}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Removes a name from an open directory; false when it is not there.</summary>
    public static bool UnlinkAt(Microsoft.Win32.SafeHandles.SafeFileHandle directory, string name) =>
        unlinkat((int)directory.DangerousGetHandle(), name, 0) == 0;

    /// <summary>fsync of an open directory (a rename in it is on disk).</summary>
    public static void Sync(Microsoft.Win32.SafeHandles.SafeFileHandle directory) => fsync((int)directory.DangerousGetHandle());

    /// <summary>chown and chmod of an open file or directory.</summary>
    public static void SetOwnerAndMode(Microsoft.Win32.SafeHandles.SafeFileHandle file, uint uid, uint gid, int mode)
    {
        var fd = (int)file.DangerousGetHandle();
        if (fchown(fd, uid, gid) != 0 || fchmod(fd, (uint)mode) != 0)
        {
            throw new IOException($"chown/chmod: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>chown and chmod of a directory that is not a link (O_NOFOLLOW): a link swapped in for it is an error, never followed.</summary>
    public static void SetDirectoryOwnerAndMode(string path, uint uid, uint gid, int mode)
    {
        const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
        var fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"open {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        try
        {
            if (fchown(fd, uid, gid) != 0 || fchmod(fd, (uint)mode) != 0)
            {
                throw new IOException($"chown/chmod {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
        }
        finally
        {
            close(fd);
        }
    }

    public static void Chown(string path, uint uid, uint gid)
    {
        if (lchown(path, uid, gid) != 0)
        {
            throw new IOException($"chown {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>A hard link; false (nothing done) when the filesystem or the kernel refuses one.</summary>
    public static bool TryLink(string existing, string newPath) => link(existing, newPath) == 0;

    /// <summary>fsync a directory, so a rename or unlink in it is on disk.</summary>
    public static void SyncDirectory(string directory)
    {
        const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
        var fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
        {
            return; // best effort: nothing to sync where the directory cannot be opened
        }
        fsync(fd);
        close(fd);
    }

    public static string? UserName(uint uid) => Lookup(uid, byName: null, user: true)?.Name;

    public static string? GroupName(uint gid) => Lookup(gid, byName: null, user: false)?.Name;

    /// <summary>A user's uid, primary gid and home directory; null when there is no such user.</summary>
    public static (uint Uid, uint Gid, string Home)? User(string name) =>
        Lookup(0, name, user: true) is { } e ? (e.Id, e.Gid, e.Home) : null;

    public static uint? Group(string name) => Lookup(0, name, user: false)?.Id;

    private sealed record Entry(string Name, uint Id, uint Gid, string Home);

    private static unsafe Entry? Lookup(uint id, string? byName, bool user)
    {
        var size = 16 * 1024;
        var record = stackalloc byte[64];
        while (true)
        {
            var buffer = new byte[size];
            byte* result = null;
            int rc;
            fixed (byte* b = buffer)
            {
                rc = (user, byName) switch
                {
                    (true, null) => getpwuid_r(id, record, b, size, &result),
                    (true, { } n) => getpwnam_r(n, record, b, size, &result),
                    (false, null) => getgrgid_r(id, record, b, size, &result),
                    (false, { } n) => getgrnam_r(n, record, b, size, &result),
                };
                if (rc == ERANGE && size < 1024 * 1024)
                {
                    size *= 4;
                    continue;
                }
                if (rc != 0 || result == null)
                {
                    return null;
                }
                var name = Marshal.PtrToStringUTF8(*(nint*)record) ?? "";
                // struct passwd: name, passwd, uid (16), gid (20), gecos, dir (32), shell; struct group: name, passwd, gid (16), mem.
                return user
                    ? new Entry(name, *(uint*)(record + 16), *(uint*)(record + 20), Marshal.PtrToStringUTF8(*(nint*)(record + 32)) ?? "/")
                    : new Entry(name, *(uint*)(record + 16), *(uint*)(record + 16), "");
            }
        }
    }

    /// <summary>Whether a process with this pid exists (for stale lock and temporary files).</summary>
    public static bool ProcessExists(int pid) => pid > 0 && Directory.Exists($"/proc/{pid}");
}
