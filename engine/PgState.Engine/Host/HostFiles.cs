using System.Text;

namespace PgState.Engine.Host;

/// <summary>Files on the host, written so that a crash leaves either the old or the new content.</summary>
public static class HostFiles
{
    /// <summary>
    /// Replaces <paramref name="path"/>: writes a temporary file in the same directory, fsyncs it,
    /// gives it the original's owner, group, mode and SELinux label, renames it over the original
    /// and fsyncs the directory.
    /// </summary>
    public static async Task ReplaceAsync(string path, string content, ProcessRunner processes, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.pgstate-{Environment.ProcessId}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            if (File.Exists(path))
            {
                File.SetUnixFileMode(temp, File.GetUnixFileMode(path));
                await processes.RunAsync("chown", ["--reference=" + path, temp], cancellationToken: cancellationToken);
                await CopySelinuxLabelAsync(path, temp, processes, cancellationToken);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
        await processes.RunAsync("sync", [directory], cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Writes a file pgstate owns (plans, reports, metrics, status): temporary file in the same
    /// directory, fsync, rename over the target. Readers see the old or the new content, never half.
    /// </summary>
    public static async Task WriteAtomicAsync(string path, string content, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Copies security.selinux when the original has one (it may not where SELinux is off).</summary>
    private static async Task CopySelinuxLabelAsync(string from, string to, ProcessRunner processes, CancellationToken cancellationToken)
    {
        ProcessResult label;
        try
        {
            label = await processes.RunAsync("getfattr", ["--absolute-names", "--only-values", "-n", "security.selinux", from], check: false, cancellationToken: cancellationToken);
        }
        catch (Diagnostics.PgStateException)
        {
            return; // getfattr (package attr) is not installed: no labels to keep
        }
        var value = label.StandardOutput.TrimEnd('\0', '\n');
        if (label.ExitCode == 0 && value.Length > 0)
        {
            await processes.RunAsync("setfattr", ["-n", "security.selinux", "-v", value, to], cancellationToken: cancellationToken);
        }
    }
}

/// <summary>Where PostgreSQL's programs live: Debian's /usr/lib/postgresql/N/bin, RHEL's /usr/pgsql-N/bin, else PATH.</summary>
public static class PostgresPrograms
{
    /// <summary>The program for server major version <paramref name="major"/>, or the newest installed one when null.</summary>
    public static string Find(string program, int? major = null)
    {
        IEnumerable<string> dirs = major is { } m
            ? [$"/usr/lib/postgresql/{m}/bin", $"/usr/pgsql-{m}/bin"]
            : Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin"))
                : [];
        return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists) ?? program;
    }
}
