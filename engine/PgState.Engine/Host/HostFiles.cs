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
