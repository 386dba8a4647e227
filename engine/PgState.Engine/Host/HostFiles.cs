using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PgState.Engine.Host;

/// <summary>Files on the host, written so that a crash leaves either the old or the new content, never half.</summary>
public static partial class HostFiles
{
    /// <summary>rw-r--r--: plans, reports, metrics (a metrics collector reads them as another user).</summary>
    public const UnixFileMode DefaultMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The temporary name pgstate uses beside <paramref name="path"/>; it carries the pid so a later run can tell a stale one.</summary>
    public static string TemporaryFor(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.pgstate-{Environment.ProcessId}.tmp");

    /// <summary>
    /// Replaces <paramref name="path"/> (or creates it): writes a temporary file in the same directory,
    /// gives it the original's owner, group, mode and SELinux label (or the given ones for a new
    /// file; always the given ones when <paramref name="keepExisting"/> is false), fsyncs it, renames it
    /// over the original and fsyncs the directory. A symlink root made is written through (its target
    /// is replaced, the link stays); another user's is an error (<see cref="ResolveLinks"/>); with
    /// <paramref name="followLinks"/> false any link at the path is replaced by the file.
    /// </summary>
    public static async Task ReplaceAsync(string path, byte[] content, CancellationToken cancellationToken, UnixFileMode? newFileMode = null, (uint Uid, uint Gid)? newFileOwner = null,
        bool followLinks = true, bool keepExisting = true)
    {
        // followLinks false: a link at the path is replaced by the file, not written through.
        var target = followLinks ? ResolveLinks(path) : Path.Combine(ResolveLinks(Path.GetDirectoryName(Path.GetFullPath(path))!), Path.GetFileName(path));
        var name = Path.GetFileName(target);
        // The directory is opened once, walking its path without following any link, and every name is looked up in it:
        // a directory swapped for a link after the checks cannot move the write elsewhere.
        using var directory = Posix.OpenDirectoryNoLinks(Path.GetDirectoryName(target)!);
        var temp = Path.GetFileName(TemporaryFor(target));
        try
        {
            Posix.UnlinkAt(directory, temp);
            await using (var stream = new FileStream(Posix.CreateExclusiveAt(directory, temp, 0b110_000_000), FileAccess.Write))
            {
                await stream.WriteAsync(content, cancellationToken);
                // Mode, owner and label go on the open file (fchmod, fchown, fsetxattr): never on whatever the name points at by then.
                if (keepExisting && Posix.StatAt(directory, name) is { Kind: PosixFileKind.Regular } existing)
                {
                    File.SetUnixFileMode(stream.SafeFileHandle, (UnixFileMode)existing.Mode);
                    Posix.Own(stream.SafeFileHandle, Posix.IsRoot ? (existing.Uid, existing.Gid) : null, Posix.SelinuxLabel(target));
                }
                else
                {
                    if (newFileMode is { } mode)
                    {
                        File.SetUnixFileMode(stream.SafeFileHandle, mode);
                    }
                    Posix.Own(stream.SafeFileHandle, Posix.IsRoot ? newFileOwner : null, null);
                }
                stream.Flush(flushToDisk: true);
            }
            Posix.RenameAt(directory, temp, name);
        }
        finally
        {
            Posix.UnlinkAt(directory, temp);
        }
        Posix.Sync(directory);
    }

    public static Task ReplaceAsync(string path, string content, CancellationToken cancellationToken, UnixFileMode? newFileMode = null, (uint Uid, uint Gid)? newFileOwner = null) =>
        ReplaceAsync(path, Encoding.UTF8.GetBytes(content), cancellationToken, newFileMode, newFileOwner);

    /// <summary>
    /// Follows symlinks, component by component, to the file that is really there (or would be
    /// created). Only links root made (or, for a process that is not root, this user) are followed:
    /// a link another user planted in a directory of theirs would let them point a root write, chown
    /// or chmod at any file of the host, so it is an error naming the link.
    /// </summary>
    public static string ResolveLinks(string path)
    {
        var pending = new Stack<string>(Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        var resolved = "/";
        var hops = 0;
        var me = Posix.EffectiveUid;
        while (pending.TryPop(out var part))
        {
            if (part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? "/";
                continue;
            }
            var next = Path.Combine(resolved, part);
            if (Posix.Stat(next, followLinks: false) is not { Kind: PosixFileKind.Symlink } link)
            {
                resolved = next;
                continue;
            }
            if (++hops > 40)
            {
                throw new IOException($"{path}: too many levels of symbolic links");
            }
            if (link.Uid != 0 && link.Uid != me)
            {
                throw new Diagnostics.PgStateException($"{Manifests.TextSafety.Printable(next)} is a symbolic link owned by {Posix.UserName(link.Uid) ?? link.Uid.ToString(CultureInfo.InvariantCulture)}: " +
                    "pgstate follows only links root made (another user's link could point it at any file); replace it with the real path");
            }
            var target = new FileInfo(next).LinkTarget ?? "";
            if (target.StartsWith('/'))
            {
                resolved = "/";
            }
            foreach (var t in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
            {
                pending.Push(t);
            }
        }
        return resolved;
    }

    /// <summary>
    /// Writes a file pgstate owns (plans, reports, metrics, status): temporary file in the same
    /// directory, fsync, rename over the target. Readers see the old or the new content, never half.
    /// </summary>
    public static async Task WriteAtomicAsync(string path, string content, CancellationToken cancellationToken, UnixFileMode mode = DefaultMode)
    {
        var full = Path.GetFullPath(path);
        var name = Path.GetFileName(full);
        using var directory = Posix.OpenDirectoryNoLinks(ResolveLinks(Path.GetDirectoryName(full)!));
        var temp = Path.GetFileName(TemporaryFor(full));
        try
        {
            Posix.UnlinkAt(directory, temp);
            await using (var stream = new FileStream(Posix.CreateExclusiveAt(directory, temp, 0b110_000_000), FileAccess.Write))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken);
                File.SetUnixFileMode(stream.SafeFileHandle, mode);
                stream.Flush(flushToDisk: true);
            }
            Posix.RenameAt(directory, temp, name);
        }
        finally
        {
            Posix.UnlinkAt(directory, temp);
        }
        Posix.Sync(directory);
    }

    /// <summary>
    /// Reads a small file that another user may have put in place of the expected one: a regular file
    /// only (a FIFO or a device is an error, never a hang or a read without end), at most
    /// <paramref name="maxBytes"/>; with <paramref name="followLinks"/> false a link is an error too.
    /// </summary>
    public static byte[] ReadBounded(string path, long maxBytes, bool followLinks = true)
    {
        using var handle = Posix.OpenRegular(path, followLinks, out var size);
        if (size > maxBytes)
        {
            throw new IOException($"{path} is {size} bytes, more than the {maxBytes} pgstate reads from such a file");
        }
        var buffer = new byte[size];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        return buffer[..read];
    }

    /// <summary><see cref="ReadBounded"/> as UTF-8 text.</summary>
    public static string ReadBoundedText(string path, long maxBytes, bool followLinks = true) => Encoding.UTF8.GetString(ReadBounded(path, maxBytes, followLinks));

    /// <summary>Removes pgstate's temporary files in a directory whose process is gone; returns their names.</summary>
    public static IReadOnlyList<string> RemoveStaleTemporaries(string directory)
    {
        var removed = new List<string>();
        if (!Directory.Exists(directory))
        {
            return removed;
        }
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(directory, ".*.pgstate-*.tmp").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return removed;
        }
        foreach (var file in candidates)
        {
            var m = TemporaryName().Match(Path.GetFileName(file));
            if (m.Success && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !Posix.ProcessExists(pid))
            {
                try
                {
                    File.Delete(file);
                    removed.Add(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // left for a run with the rights to remove it
                }
            }
        }
        return removed;
    }

    [GeneratedRegex(@"^\..+\.pgstate-([0-9]+)\.tmp\z")]
    private static partial Regex TemporaryName();
}

/// <summary>Where PostgreSQL's programs live: Debian's /usr/lib/postgresql/N/bin, RHEL's /usr/pgsql-N/bin, else PATH.</summary>
public static class PostgresPrograms
{
    /// <summary>The client program for server major version <paramref name="major"/>, or the newest installed one when null.</summary>
    public static string Find(string program, int? major = null)
    {
        foreach (var dir in Candidates(major))
        {
            var path = Path.Combine(dir, program);
            if (File.Exists(path))
            {
                return path;
            }
        }
        return program;
    }

    /// <summary>Every directory that may hold PostgreSQL programs, for the major version first, newest first otherwise.</summary>
    public static IEnumerable<string> Candidates(int? major)
    {
        if (major is { } m)
        {
            yield return $"/usr/lib/postgresql/{m}/bin";
            yield return $"/usr/pgsql-{m}/bin";
        }
        foreach (var root in new[] { "/usr/lib/postgresql", "/usr" })
        {
            if (!Directory.Exists(root))
            {
                continue;
            }
            var dirs = root == "/usr"
                ? Directory.GetDirectories(root, "pgsql-*").Select(d => Path.Combine(d, "bin"))
                : Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin"));
            foreach (var d in dirs.OrderByDescending(d => MajorOf(d)))
            {
                yield return d;
            }
        }
    }

    private static int MajorOf(string binDirectory) =>
        int.TryParse(new string([.. Path.GetFileName(Path.GetDirectoryName(binDirectory)!).Where(char.IsAsciiDigit)]), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;

    /// <summary>
    /// A server program (pg_ctl, postgres) of the running server itself: the directory of the
    /// postmaster's executable (from postmaster.pid and /proc), so that a host with several majors
    /// installed never restarts a data directory with another major's binaries. Falls back to
    /// PG_VERSION's major.
    /// </summary>
    public static string ServerProgram(string program, string dataDirectory, int major)
    {
        try
        {
            var pidLine = HostFiles.ReadBoundedText(Path.Combine(dataDirectory, "postmaster.pid"), 4096).Split('\n')[0];
            if (int.TryParse(pidLine?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && new FileInfo($"/proc/{pid}/exe").LinkTarget is { } exe
                && File.Exists(Path.Combine(Path.GetDirectoryName(exe)!, program)))
            {
                return Path.Combine(Path.GetDirectoryName(exe)!, program);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // not readable here: use the version
        }
        var dataMajor = major;
        try
        {
            if (int.TryParse(HostFiles.ReadBoundedText(Path.Combine(dataDirectory, "PG_VERSION"), 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                dataMajor = v;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        foreach (var dir in Candidates(dataMajor).Take(2))
        {
            var path = Path.Combine(dir, program);
            if (File.Exists(path))
            {
                return path;
            }
        }
        throw new Diagnostics.PgStateException($"cannot find {program} of PostgreSQL {dataMajor} (looked in /usr/lib/postgresql/{dataMajor}/bin and /usr/pgsql-{dataMajor}/bin); set spec.restart.command");
    }
}
