using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PgState.Engine.Host;

/// <summary>Files on the host, written so that a crash leaves either the old or the new content, never half.</summary>
public static partial class HostFiles
{
    /// <summary>The temporary name pgstate uses beside <paramref name="path"/>; it carries the pid so a later run can tell a stale one.</summary>
    public static string TemporaryFor(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.pgstate-{Environment.ProcessId}.tmp");

    /// <summary>
    /// Replaces <paramref name="path"/> (or creates it): writes a temporary file in the same directory,
    /// gives it the original's owner, group, mode and SELinux label (or the given ones for a new
    /// file), fsyncs it, renames it over the original and fsyncs the directory. A symlink is written
    /// through: its target is replaced, the link stays.
    /// </summary>
    public static async Task ReplaceAsync(string path, byte[] content, CancellationToken cancellationToken, UnixFileMode? newFileMode = null, (uint Uid, uint Gid)? newFileOwner = null)
    {
        var target = ResolveLinks(path);
        var directory = Path.GetDirectoryName(target)!;
        var temp = TemporaryFor(target);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                await stream.WriteAsync(content, cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            if (Posix.Stat(target) is { } existing)
            {
                File.SetUnixFileMode(temp, (UnixFileMode)existing.Mode);
                if (Posix.IsRoot)
                {
                    Posix.Chown(temp, existing.Uid, existing.Gid);
                }
                if (Posix.SelinuxLabel(target) is { } label)
                {
                    Posix.SetSelinuxLabel(temp, label);
                }
            }
            else
            {
                if (newFileMode is { } mode)
                {
                    File.SetUnixFileMode(temp, mode);
                }
                if (newFileOwner is { } owner && Posix.IsRoot)
                {
                    Posix.Chown(temp, owner.Uid, owner.Gid);
                }
            }
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
        Posix.SyncDirectory(directory);
    }

    public static Task ReplaceAsync(string path, string content, CancellationToken cancellationToken, UnixFileMode? newFileMode = null, (uint Uid, uint Gid)? newFileOwner = null) =>
        ReplaceAsync(path, Encoding.UTF8.GetBytes(content), cancellationToken, newFileMode, newFileOwner);

    /// <summary>Follows symlinks to the file that is really there (or would be created).</summary>
    public static string ResolveLinks(string path)
    {
        var full = Path.GetFullPath(path);
        for (var i = 0; i < 40; i++)
        {
            var info = new FileInfo(full);
            if (info.LinkTarget is not { } link)
            {
                return full;
            }
            full = Path.GetFullPath(link, Path.GetDirectoryName(full)!);
        }
        throw new IOException($"{path}: too many levels of symbolic links");
    }

    /// <summary>
    /// Writes a file pgstate owns (plans, reports, metrics, status): temporary file in the same
    /// directory, fsync, rename over the target. Readers see the old or the new content, never half.
    /// </summary>
    public static async Task WriteAtomicAsync(string path, string content, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var temp = TemporaryFor(full);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
        Posix.SyncDirectory(Path.GetDirectoryName(full)!);
    }

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
            var pidLine = File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).FirstOrDefault();
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
            if (int.TryParse(File.ReadAllText(Path.Combine(dataDirectory, "PG_VERSION")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
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
