using System.Globalization;
using System.Text.Json;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;

namespace PgState.Modules.Backups;

/// <summary>What the last run did; `drift` and the backup health check read it.</summary>
public sealed record BackupStatus(string Name, string? Backup, DateTime StartedUtc, DateTime? EndedUtc, long Bytes, bool Verified, string? Verification, string? Error);

/// <summary>
/// `pgstate backup run NAME`: lock, pg_basebackup -X stream into DEST/&lt;UTC time&gt;.partial, rename,
/// pg_verifybackup, retention, status file. Every step through the process runner.
/// </summary>
public sealed class BackupRunner(HostManifest host, DesiredBackup backup, ProcessRunner processes, Func<string, string?> environment, Action<string> log)
{
    public const string StampFormat = "yyyyMMdd'T'HHmmss'Z'";

    public string StatusPath => Path.Combine(backup.Destination, $".pgstate-status-{backup.Name}.json");

    public async Task<BackupStatus> RunAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(backup.Destination);
        using var lockFile = AcquireLock();
        RemoveStalePartials();
        var started = DateTime.UtcNow;
        var stamp = started.ToString(StampFormat, CultureInfo.InvariantCulture);
        var partial = Path.Combine(backup.Destination, stamp + ".partial");
        var final = Path.Combine(backup.Destination, stamp);
        await File.WriteAllTextAsync(partial + ".pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken);
        var status = new BackupStatus(backup.Name, null, started, null, 0, false, null, null);
        try
        {
            log($"pg_basebackup into {partial}");
            var result = await processes.RunAsync(PostgresPrograms.Find("pg_basebackup"), BaseBackupArguments(partial), TimeSpan.FromHours(12), check: false,
                cancellationToken: cancellationToken, environment: PasswordEnvironment());
            if (result.ExitCode != 0)
            {
                DeleteQuietly(partial);
                return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow, Error = $"pg_basebackup exited with code {result.ExitCode}: {result.StandardError.Trim()}" }, cancellationToken);
            }
            Directory.Move(partial, final);
            status = status with { Backup = final, Bytes = DirectorySize(final) };
        }
        finally
        {
            File.Delete(partial + ".pid");
        }
        status = await VerifyAsync(status, final, cancellationToken);
        if (status.Error is null)
        {
            foreach (var old in Retention.ToDelete(ListBackups(), DateTime.UtcNow, backup.RetentionCount, backup.RetentionMaxAge))
            {
                log($"retention: removing {old.Path}");
                DeleteQuietly(old.Path);
                File.Delete(old.Path + ".verified");
            }
        }
        return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow }, cancellationToken);
    }

    /// <summary>Verifies a finished backup again (the newest, or the one given) and records the outcome.</summary>
    public async Task<BackupStatus> VerifyExistingAsync(string? path, CancellationToken cancellationToken)
    {
        var target = path ?? ListBackups().OrderByDescending(b => b.StartedUtc).FirstOrDefault()?.Path
            ?? throw new PgStateException($"no finished backup in {backup.Destination}");
        File.Delete(target + ".verified");
        var status = new BackupStatus(backup.Name, target, DateTime.UtcNow, null, DirectorySize(target), false, null, null);
        status = await VerifyAsync(status, target, cancellationToken);
        return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow }, cancellationToken);
    }

    private async Task<BackupStatus> VerifyAsync(BackupStatus status, string path, CancellationToken cancellationToken)
    {
        if (!backup.Verify)
        {
            return status with { Verification = "skipped: verify is false" };
        }
        if (backup.Format == "tar")
        {
            // pg_verifybackup before PostgreSQL 17 reads plain backups only.
            return status with { Verification = "skipped: this pg_verifybackup cannot read tar-format backups; backup_manifest is present" };
        }
        log($"pg_verifybackup {path}");
        var result = await processes.RunAsync(PostgresPrograms.Find("pg_verifybackup"), ["--no-parse-wal", path], TimeSpan.FromHours(6), check: false, cancellationToken: cancellationToken);
        if (result.ExitCode != 0)
        {
            return status with { Verified = false, Verification = "failed", Error = $"pg_verifybackup exited with code {result.ExitCode}: {result.StandardError.Trim()}" };
        }
        await File.WriteAllTextAsync(path + ".verified", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture), cancellationToken);
        return status with { Verified = true, Verification = "pg_verifybackup passed" };
    }

    private List<string> BaseBackupArguments(string target)
    {
        var c = host.Connection;
        List<string> args = ["-D", target, "-X", "stream", "-c", backup.Checkpoint, "-F", backup.Format == "tar" ? "t" : "p",
            "--manifest-checksums", backup.ManifestChecksums, "-h", c.Host, "-p", c.Port.ToString(CultureInfo.InvariantCulture),
            "-U", backup.User ?? c.User, "-w"];
        if (backup.Compression != "none")
        {
            args.AddRange(["-Z", backup.Compression]);
        }
        return args;
    }

    /// <summary>The password goes in the child's environment (PGPASSWORD), never on its command line.</summary>
    private Dictionary<string, string?>? PasswordEnvironment() =>
        backup.Password is { } secret ? new() { ["PGPASSWORD"] = secret.Resolve(environment) } : null;

    private FileStream AcquireLock()
    {
        var path = Path.Combine(backup.Destination, $".pgstate-backup-{backup.Name}.lock");
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            var owner = System.Text.Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} since {DateTime.UtcNow:O}\n");
            stream.Write(owner);
            stream.Flush();
            return stream;
        }
        catch (IOException)
        {
            var holder = File.Exists(path) ? File.ReadAllText(path).Trim() : "unknown";
            throw new PgStateException($"another backup run of '{backup.Name}' holds {path} ({holder})");
        }
    }

    /// <summary>.partial directories whose run is gone (their pid file names a dead process, or there is none).</summary>
    private void RemoveStalePartials()
    {
        foreach (var dir in Directory.EnumerateDirectories(backup.Destination, "*.partial"))
        {
            var pidFile = dir + ".pid";
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && Directory.Exists($"/proc/{pid}"))
            {
                continue; // a run still in progress
            }
            log($"removing stale {dir}");
            DeleteQuietly(dir);
            File.Delete(pidFile);
        }
    }

    public List<BackupEntry> ListBackups() =>
        [.. Directory.EnumerateDirectories(backup.Destination)
            .Select(d => (Path: d, Ok: DateTime.TryParseExact(Path.GetFileName(d), StampFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t), Time: t))
            .Where(x => x.Ok)
            .Select(x => new BackupEntry(x.Path, x.Time, File.Exists(x.Path + ".verified")))];

    private async Task<BackupStatus> WriteStatusAsync(BackupStatus status, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.Serialize(status, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await HostFiles.WriteAtomicAsync(StatusPath, json + "\n", cancellationToken);
        return status;
    }

    public static BackupStatus? ReadStatus(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<BackupStatus>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }) : null;

    private static long DirectorySize(string path) =>
        Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static void DeleteQuietly(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
