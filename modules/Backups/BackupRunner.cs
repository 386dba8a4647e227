using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Modules.PgBackRest;

namespace PgState.Modules.Backups;

/// <summary>What the last run did; `drift` and the backup health check read it.</summary>
public sealed record BackupStatus(string Name, string? Backup, DateTime StartedUtc, DateTime? EndedUtc, long Bytes, bool Verified, string? Verification, string? Error);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(BackupStatus))]
internal sealed partial class BackupJson : JsonSerializerContext;

/// <summary>
/// `pgstate backup run NAME`: lock, pg_basebackup -X stream into DEST/&lt;UTC time&gt;.partial, rename,
/// pg_verifybackup, retention, status file. Started as root, it runs the tools as the data
/// directory's owner and gives that user every file it creates, so the next scheduled run (as that
/// user) finds nothing it cannot use; started as another user, it first checks it can.
/// </summary>
public sealed class BackupRunner(HostManifest host, DesiredBackup backup, ProcessRunner processes, SecretResolver secrets, JobIdentity job, Action<string> log,
    Action<string>? progress = null, PgBackRestFact? pgbackrest = null)
{
    public const string StampFormat = "yyyyMMdd'T'HHmmss'Z'";

    public string StatusPath => StatusFile(backup);

    public static string StatusFile(DesiredBackup backup) => Path.Combine(backup.Destination, $".pgstate-status-{backup.Name}.json");

    private string LockPath => Path.Combine(backup.Destination, $".pgstate-backup-{backup.Name}.lock");

    public async Task<BackupStatus> RunAsync(CancellationToken cancellationToken)
    {
        PrepareDestination();
        using var lockFile = AcquireLock();
        var status = new BackupStatus(backup.Name, null, DateTime.UtcNow, null, 0, false, null, null);
        try
        {
            return await RunLockedAsync(status, cancellationToken);
        }
        catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
        {
            // Recorded, so that check reports this run as failed (a secret the job cannot read, a file it cannot write …).
            try
            {
                return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow, Error = e.Message }, cancellationToken);
            }
            catch (Exception w) when (w is IOException or UnauthorizedAccessException)
            {
                throw new PgStateException($"{e.Message} (and {StatusPath} could not be written: {w.Message})");
            }
        }
    }

    private async Task<BackupStatus> RunLockedAsync(BackupStatus status, CancellationToken cancellationToken)
    {
        if (backup.IsPgBackRest)
        {
            return await RunPgBackRestAsync(status, cancellationToken);
        }
        var password = PasswordEnvironment();
        RemoveStalePartials();
        // Backups are named by the second they start: a run in the same second as the last one waits for the next.
        while (Directory.Exists(Path.Combine(backup.Destination, status.StartedUtc.ToString(StampFormat, CultureInfo.InvariantCulture))))
        {
            await Task.Delay(1001 - status.StartedUtc.Millisecond, cancellationToken);
            status = status with { StartedUtc = DateTime.UtcNow };
        }
        var stamp = status.StartedUtc.ToString(StampFormat, CultureInfo.InvariantCulture);
        var partial = Path.Combine(backup.Destination, stamp + ".partial");
        var final = Path.Combine(backup.Destination, stamp);
        await File.WriteAllTextAsync(partial + ".pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken);
        try
        {
            // A pg_basebackup older than the server cannot stream from it: say which, and what to install, before trying.
            var tool = Tool("pg_basebackup");
            if (ServerMajor is { } major && ClientTools.Incompatibility(tool, major, major.ToString(CultureInfo.InvariantCulture)) is { } why)
            {
                DeleteQuietly(partial);
                return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow, Error = why }, cancellationToken);
            }
            log($"{tool.Describe()} into {partial}");
            var result = await RunToolAsync(tool.Path ?? "pg_basebackup", BaseBackupArguments(partial), TimeSpan.FromHours(12), cancellationToken, password, showProgress: true);
            if (result.ExitCode != 0)
            {
                DeleteQuietly(partial);
                var hint = result.StandardError.Contains("incompatible server version", StringComparison.Ordinal)
                    ? $" ({tool.Describe()} is older than the server: {ClientTools.InstallHint("pg_basebackup", ServerMajor ?? 0)})" : "";
                return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow, Error = $"pg_basebackup exited with code {result.ExitCode}: {result.StandardError.Trim()}{hint}" }, cancellationToken);
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

    /// <summary>pgbackrest backup --type=TYPE with spec.pgbackrest's configuration; pgBackRest expires by its own retention.</summary>
    private async Task<BackupStatus> RunPgBackRestAsync(BackupStatus status, CancellationToken cancellationToken)
    {
        var cli = PgBackRest();
        log($"pgbackrest backup --type={backup.PgBackRestType} (stanza {cli.Stanza}, {cli.ConfigPath})");
        var result = await cli.RunAsync("backup", ["--type=" + backup.PgBackRestType], TimeSpan.FromHours(24), cancellationToken, progress);
        if (result.ExitCode != 0)
        {
            return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow, Error = $"pgbackrest backup exited with code {result.ExitCode}: {PgBackRestCli.Message(result)}" }, cancellationToken);
        }
        var info = await cli.InfoAsync(TimeSpan.FromMinutes(5), cancellationToken);
        var newest = info.Newest(backup.PgBackRestType) ?? throw new PgStateException($"pgbackrest backup succeeded but pgbackrest info lists no {backup.PgBackRestType} backup");
        return await WriteStatusAsync(status with
        {
            EndedUtc = DateTime.UtcNow,
            Backup = newest.Label,
            Bytes = newest.RepositorySize,
            Verification = "page checksums checked by pgBackRest while copying (pgstate backup verify runs pgbackrest verify)",
        }, cancellationToken);
    }

    private PgBackRestCli PgBackRest() =>
        pgbackrest is { } p ? new PgBackRestCli(p.ConfigPath, p.Stanza, null, processes)
            : throw new PgStateException($"backup {backup.Name} uses pgbackrest and the manifest declares no spec.pgbackrest");

    /// <summary>Verifies a finished backup again (the newest, or the one given) and records the outcome.</summary>
    public async Task<BackupStatus> VerifyExistingAsync(string? path, CancellationToken cancellationToken)
    {
        PrepareDestination();
        if (backup.IsPgBackRest)
        {
            var cli = PgBackRest();
            var started = DateTime.UtcNow;
            log("pgbackrest verify");
            var result = await cli.RunAsync("verify", path is null ? [] : ["--set=" + path], TimeSpan.FromHours(12), cancellationToken);
            return await WriteStatusAsync(new BackupStatus(backup.Name, path, started, DateTime.UtcNow, 0, result.ExitCode == 0,
                result.ExitCode == 0 ? "pgbackrest verify passed" : "failed",
                result.ExitCode == 0 ? null : $"pgbackrest verify exited with code {result.ExitCode}: {PgBackRestCli.Message(result)}"), cancellationToken);
        }
        var target = path ?? ListBackups().OrderByDescending(b => b.StartedUtc).FirstOrDefault()?.Path
            ?? throw new PgStateException($"no finished backup in {backup.Destination}");
        File.Delete(target + ".verified");
        var status = new BackupStatus(backup.Name, target, DateTime.UtcNow, null, DirectorySize(target), false, null, null);
        status = await VerifyAsync(status, target, cancellationToken);
        return await WriteStatusAsync(status with { EndedUtc = DateTime.UtcNow }, cancellationToken);
    }

    /// <summary>
    /// The destination exists and what pgstate keeps there belongs to the user the job runs as (a
    /// root start became that user already): every entry this user cannot use is named, with the
    /// command that fixes it, instead of failing half-way with "access denied".
    /// </summary>
    private void PrepareDestination()
    {
        try
        {
            PrepareDestinationCore();
        }
        catch (UnauthorizedAccessException)
        {
            var me = Posix.UserName(Posix.EffectiveUid) ?? "this user";
            throw new PgStateException($"backup {backup.Name} runs as {me}, who cannot create or read {backup.Destination}. " +
                $"Fix: declare it in spec.directories with owner {job.User} (pgstate apply creates it), or chown -R {job.User}: {BackupUnits.CronArgument(backup.Destination)}");
        }
    }

    private void PrepareDestinationCore()
    {
        if (!Directory.Exists(backup.Destination))
        {
            Directory.CreateDirectory(backup.Destination, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var ours = Directory.EnumerateFileSystemEntries(backup.Destination)
            .Where(e => Path.GetFileName(e) is var n && (n.StartsWith(".pgstate-", StringComparison.Ordinal) || IsBackupName(n)))
            .Prepend(backup.Destination).ToList();
        var uid = Posix.EffectiveUid;
        var wrong = ours.Where(e => Posix.Stat(e, followLinks: false) is { } st && st.Uid != uid).ToList();
        if (wrong.Count > 0)
        {
            var me = Posix.UserName(uid) ?? uid.ToString(CultureInfo.InvariantCulture);
            var owners = wrong.Select(e => $"{e} (owned by {Posix.UserName(Posix.Stat(e, followLinks: false)!.Uid) ?? "?"})");
            throw new PgStateException($"backup {backup.Name} runs as {me}, but these are not {me}'s: {string.Join(", ", owners.Take(5))}{(wrong.Count > 5 ? ", …" : "")}. " +
                $"Fix: chown -R {me}: {string.Join(' ', wrong.Take(5).Select(w => BackupUnits.CronArgument(w)))}");
        }
    }

    private static bool IsBackupName(string name)
    {
        var stem = name.Split('.')[0];
        return DateTime.TryParseExact(stem, StampFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _);
    }

    /// <summary>Runs a PostgreSQL tool, never with a shell.</summary>
    private Task<ProcessResult> RunToolAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string?>? environment = null, bool showProgress = false) =>
        processes.RunAsync(program, arguments, timeout, check: false, cancellationToken: cancellationToken, environment: environment,
            errorLines: showProgress ? progress : null);

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
        var tool = Tool("pg_verifybackup");
        if (ServerMajor is { } major && ClientTools.Incompatibility(tool, major, major.ToString(CultureInfo.InvariantCulture)) is { } why)
        {
            return status with { Verified = false, Verification = "failed", Error = why };
        }
        log($"{tool.Describe()} {path}");
        var result = await RunToolAsync(tool.Path ?? "pg_verifybackup", ["--no-parse-wal", path], TimeSpan.FromHours(6), cancellationToken);
        if (result.ExitCode != 0)
        {
            return status with { Verified = false, Verification = "failed", Error = $"pg_verifybackup exited with code {result.ExitCode}: {result.StandardError.Trim()}" };
        }
        await File.WriteAllTextAsync(path + ".verified", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture), cancellationToken);
        return status with { Verified = true, Verification = "pg_verifybackup passed" };
    }

    /// <summary>The major of the server being backed up, from its data directory's PG_VERSION (null when the manifest names none or it cannot be read).</summary>
    private int? ServerMajor
    {
        get
        {
            try
            {
                return host.DataDirectory?.Value is { } d && int.TryParse(HostFiles.ReadBoundedText(Path.Combine(d, "PG_VERSION"), 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    /// <summary>The tool for this server's major (that major's own first, else the newest installed).</summary>
    private ClientTool Tool(string program) => ClientTools.FindPostgres(program, ServerMajor ?? 0, null);

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
        if (progress is not null)
        {
            args.Add("-P");
        }
        return args;
    }

    /// <summary>The password goes in the child's environment (PGPASSWORD), never on its command line.</summary>
    private Dictionary<string, string?>? PasswordEnvironment() =>
        backup.Password is { } secret ? new() { ["PGPASSWORD"] = secrets.Resolve(secret) } : null;

    private FileStream AcquireLock()
    {
        try
        {
            var stream = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} since {DateTime.UtcNow:O}\n"));
            stream.Flush();
            return stream;
        }
        catch (UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot open the lock file {LockPath}: permission denied (it belongs to another user; chown it to the job's user {job.User})");
        }
        catch (IOException)
        {
            var holder = File.Exists(LockPath) ? HostFiles.ReadBoundedText(LockPath, 4096).Trim() : "unknown";
            throw new PgStateException($"another backup run of '{backup.Name}' holds {LockPath} ({holder})");
        }
    }

    /// <summary>.partial directories whose run is gone (their pid file names a dead process, or there is none).</summary>
    private void RemoveStalePartials()
    {
        foreach (var dir in Directory.EnumerateDirectories(backup.Destination, "*.partial"))
        {
            var pidFile = dir + ".pid";
            if (File.Exists(pidFile) && int.TryParse(HostFiles.ReadBoundedText(pidFile, 64).Trim(), out var pid) && Posix.ProcessExists(pid))
            {
                continue; // a run still in progress
            }
            log($"removing stale {dir}");
            DeleteQuietly(dir);
            File.Delete(pidFile);
        }
    }

    public List<BackupEntry> ListBackups() => List(backup.Destination);

    public static List<BackupEntry> List(string destination) =>
        !Directory.Exists(destination) ? [] :
        [.. Directory.EnumerateDirectories(destination)
            .Select(d => (Path: d, Ok: DateTime.TryParseExact(Path.GetFileName(d), StampFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t), Time: t))
            .Where(x => x.Ok)
            .Select(x => new BackupEntry(x.Path, x.Time, File.Exists(x.Path + ".verified")))];

    private async Task<BackupStatus> WriteStatusAsync(BackupStatus status, CancellationToken cancellationToken)
    {
        await HostFiles.WriteAtomicAsync(StatusPath, JsonSerializer.Serialize(status, BackupJson.Default.BackupStatus) + "\n", cancellationToken);
        return status;
    }

    /// <summary>The status of the last run; throws a clean error when it cannot be read.</summary>
    public static BackupStatus? ReadStatus(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(HostFiles.ReadBoundedText(path, 1 << 20, followLinks: false), BackupJson.Default.BackupStatus)
                ?? throw new PgStateException($"{path} is empty");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot read {path}: {e.Message}");
        }
    }

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
