using System.Globalization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Resources;
using PgState.Modules.PgBackRest;

namespace PgState.Modules.Backups;

/// <summary>What a restore source is asked to do: fill an empty data directory and write its recovery settings.</summary>
public sealed record RestoreRequest(
    string DataDirectory,
    DateTime? TargetUtc,
    string RestoreCommand,
    string Why,
    JobIdentity Job,
    Action<string> Log,
    Action<string>? Progress);

/// <summary>
/// What a source put into the data directory. Verification may still run (it reads the backup, not
/// the copy): a restore starts the server beside it and awaits it before it calls the restore good;
/// it throws, quoting the tool, when the backup is damaged.
/// </summary>
public sealed record RestoredBackup(string Source, DateTime BackupStartedUtc, DateTime? BackupEndedUtc, long Bytes, ulong? StartLsn, Task<string> Verification)
{
    /// <summary>The restore_command the source wrote, when it is not the one it was handed (pgBackRest's names the restored pg1-path).</summary>
    public string? RestoreCommand { get; init; }
}

/// <summary>Which backup a restore starts from, before it starts: for reports.</summary>
public sealed record ChosenBackup(string Source, DateTime StartedUtc, DateTime? EndedUtc);

/// <summary>
/// The one replaceable step of a restore: put a backup into an empty data directory and write its
/// recovery settings (restore_command, target, recovery_target_action = promote, recovery.signal).
/// Everything before (choosing the target, the scratch directory) and after (starting a server,
/// waiting, probing, reporting) is the same whatever made the backup. A pgBackRest source would run
/// `pgbackrest restore --type=time --target=… --pg1-path=DIR`, which writes the settings itself.
/// </summary>
public interface IRestoreSource
{
    /// <summary>For logs: which backup, of which kind.</summary>
    string Description { get; }

    /// <summary>The backup it will restore (chosen for the target when the source was made).</summary>
    ChosenBackup Chosen { get; }

    Task<RestoredBackup> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken);
}

/// <summary>Where a backup's restores come from: the backups `pgstate backup run` takes with pg_basebackup, or a pgBackRest stanza.</summary>
public static class RestoreSources
{
    /// <summary>The source for a backup and a target; throws (naming the oldest backup) when no backup can reach the target.</summary>
    public static async Task<IRestoreSource> ForAsync(DesiredBackup backup, DateTime? targetUtc, ProcessRunner processes, PgBackRestFact? pgbackrest, JobIdentity job,
        CancellationToken cancellationToken)
    {
        if (!backup.IsPgBackRest)
        {
            return new PgBaseBackupSource(backup, RestorableBackups.Choose(backup, RestorableBackups.List(backup), targetUtc), processes);
        }
        if (pgbackrest is null)
        {
            throw new PgStateException($"backup {backup.Name} uses pgbackrest and the manifest declares no spec.pgbackrest");
        }
        var cli = new PgBackRestCli(pgbackrest.ConfigPath, pgbackrest.Stanza, Posix.IsRoot ? job.User : null, processes);
        var info = await cli.InfoAsync(TimeSpan.FromMinutes(2), cancellationToken);
        return new PgBackRestSource(cli, PgBackRestSource.Choose(backup, info, targetUtc));
    }
}

/// <summary>
/// A backup in a pgBackRest stanza: `pgbackrest restore --set=LABEL --type=time --target=… --pg1-path=DIR`
/// (--type=default for the end of the archive) as the data directory's owner. pgBackRest checks each
/// file against its backup manifest while it restores; pgstate's recovery block follows pgBackRest's
/// settings in postgresql.auto.conf, so the restore_command with --config and the target are the same
/// whatever made the backup.
/// </summary>
public sealed class PgBackRestSource(PgBackRestCli cli, PgBackRestBackup chosen) : IRestoreSource
{
    public string Description => $"pgBackRest backup {chosen.Label} ({chosen.Type}) of stanza {cli.Stanza}";

    public ChosenBackup Chosen => new(chosen.Label, chosen.StartedUtc, chosen.StoppedUtc);

    /// <summary>The newest backup of the stanza (any type: diff and incr carry their references) that stopped by the target.</summary>
    public static PgBackRestBackup Choose(DesiredBackup backup, PgBackRestInfo info, DateTime? targetUtc)
    {
        var backups = info.Backups.OrderBy(b => b.StoppedUtc).ToList();
        if (backups.Count == 0)
        {
            throw new PgStateException($"stanza {info.Stanza} holds no backup to restore ({info.StatusMessage})");
        }
        if (targetUtc is not { } target)
        {
            return backups[^1];
        }
        return backups.LastOrDefault(b => b.StoppedUtc <= target)
            ?? throw new PgStateException($"the target {RestorableBackups.Stamp(target)} lies before the end of the oldest backup of stanza {info.Stanza} " +
                $"({backups[0].Label}, ended {RestorableBackups.Stamp(backups[0].StoppedUtc)}): no backup of {backup.Name} can be restored to it");
    }

    public async Task<RestoredBackup> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        List<string> options = ["--set=" + chosen.Label, "--pg1-path=" + request.DataDirectory, "--target-action=promote", "--target-timeline=latest"];
        if (request.TargetUtc is { } t)
        {
            options.AddRange(["--type=time", "--target=" + t.ToString("yyyy-MM-dd HH:mm:ss.ffffff'+00'", CultureInfo.InvariantCulture)]);
        }
        else
        {
            options.Add("--type=default");
        }
        if (Directory.EnumerateFileSystemEntries(request.DataDirectory).Any())
        {
            options.Add("--delta"); // a directory kept from an earlier restore: only what differs is copied
        }
        request.Log($"pgbackrest restore {string.Join(' ', options)}");
        var result = await cli.RunAsync("restore", options, TimeSpan.FromHours(24), cancellationToken, request.Progress);
        if (result.ExitCode != 0)
        {
            throw new PgStateException($"pgbackrest restore exited with code {result.ExitCode}: {PgBackRestCli.Message(result)}");
        }
        // archive-get refuses to run in a directory other than pg1-path: the restored server names its own.
        var restoreCommand = $"pgbackrest --config={RestoreCommands.ShellWord(cli.ConfigPath)} --stanza={RestoreCommands.ShellWord(cli.Stanza)} " +
            $"--pg1-path={RestoreCommands.ShellWord(request.DataDirectory)} archive-get %f \"%p\"";
        await RecoverySettings.WriteAsync(request.DataDirectory, restoreCommand, request.TargetUtc, request.Why, cancellationToken);
        var (startLsn, startTime) = PgBaseBackupSource.ReadBackupLabel(request.DataDirectory);
        return new RestoredBackup($"{chosen.Label} (stanza {cli.Stanza})", startTime ?? chosen.StartedUtc, chosen.StoppedUtc, chosen.Size, startLsn,
            Task.FromResult("pgBackRest checked every file against the backup's manifest while restoring"))
        {
            RestoreCommand = restoreCommand,
        };
    }
}

/// <summary>
/// A backup `pgstate backup run` took (pg_basebackup, plain or tar): copied file by file (the kernel
/// copies: no file passes through pgstate's memory) or extracted with tar as the owner, while
/// pg_verifybackup checks the same backup beside the copy and the replay that follows it.
/// </summary>
public sealed class PgBaseBackupSource(DesiredBackup backup, RestorableBackup chosen, ProcessRunner processes) : IRestoreSource
{
    public string Description => $"{chosen.Path} ({backup.Format}{(chosen.Verified ? ", verified when taken" : "")})";

    public ChosenBackup Chosen => new(chosen.Path, chosen.StartedUtc, chosen.EndedUtc);

    /// <summary>The major version of the backup (PG_VERSION), for the matching pg_verifybackup.</summary>
    private int Major => File.Exists(Path.Combine(chosen.Path, "PG_VERSION"))
        && int.TryParse(HostFiles.ReadBoundedText(Path.Combine(chosen.Path, "PG_VERSION"), 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;

    public async Task<RestoredBackup> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(chosen.Path))
        {
            throw new PgStateException($"the backup {chosen.Path} is gone (removed by retention or by hand?)");
        }
        var tarFiles = backup.Format == "tar" ? TarFiles() : [];
        var verifyCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var verification = VerifyAsync(request, verifyCancel.Token);
        _ = verification.ContinueWith(_ => verifyCancel.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        long bytes;
        try
        {
            bytes = backup.Format == "tar"
                ? await ExtractAsync(tarFiles, request, cancellationToken)
                : await Task.Run(() => TreeCopy.Copy(chosen.Path, request.DataDirectory, request.Progress, cancellationToken), cancellationToken);
        }
        catch
        {
            await verifyCancel.CancelAsync();
            try
            {
                await verification;
            }
            catch (Exception e) when (e is OperationCanceledException or PgStateException)
            {
                // the copy's error is the one to report
            }
            throw;
        }
        foreach (var leftover in new[] { "postmaster.pid", "postmaster.opts" })
        {
            File.Delete(Path.Combine(request.DataDirectory, leftover));
        }
        try
        {
            await RecoverySettings.WriteAsync(request.DataDirectory, request.RestoreCommand, request.TargetUtc, request.Why, cancellationToken);
        }
        catch
        {
            await verifyCancel.CancelAsync();
            await verification.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }
        var (startLsn, startTime) = ReadBackupLabel(request.DataDirectory);
        return new RestoredBackup(chosen.Path, startTime ?? chosen.StartedUtc, chosen.EndedUtc, bytes, startLsn, verification);
    }

    /// <summary>pg_verifybackup on the backup, beside the copy (both read the same pages once from disk).</summary>
    private async Task<string> VerifyAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        var major = Major;
        // The tool's own major decides (a tar backup's PG_VERSION is inside base.tar, unknown here).
        var tool = ClientTools.FindPostgres("pg_verifybackup", major, null);
        if (backup.Format == "tar" && tool.Major is null or < 17)
        {
            return "not verified: pg_verifybackup before PostgreSQL 17 cannot read tar-format backups";
        }
        var program = tool.Path ?? PostgresPrograms.Find("pg_verifybackup", major > 0 ? major : null);
        List<string> args = ["--no-parse-wal", "--quiet", chosen.Path];
        var result = await processes.RunAsync(program, args, TimeSpan.FromHours(6), check: false, cancellationToken: cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new PgStateException($"the backup {chosen.Path} fails verification: pg_verifybackup exited with code {result.ExitCode}: {Quote(result.StandardError)}");
        }
        return "pg_verifybackup passed";
    }

    private static string Quote(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length <= 10 ? string.Join("; ", lines) : string.Join("; ", lines.Take(10)) + $"; … ({lines.Length - 10} more lines)";
    }

    /// <summary>base.tar[.gz|.lz4|.zst] and pg_wal.tar[…]; a tablespace's tar is refused (its data would go back to production's tablespace path).</summary>
    private List<string> TarFiles()
    {
        var files = Directory.EnumerateFiles(chosen.Path, "*.tar*").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        if (files.FirstOrDefault(f => !f.StartsWith("base.tar", StringComparison.Ordinal) && !f.StartsWith("pg_wal.tar", StringComparison.Ordinal)) is { } other)
        {
            throw new PgStateException($"the backup {chosen.Path} holds {other}, a tablespace: restoring tablespaces is not supported (their links would point into production's tablespace directories)");
        }
        if (!files.Any(f => f.StartsWith("base.tar", StringComparison.Ordinal)))
        {
            throw new PgStateException($"the backup {chosen.Path} holds no base.tar");
        }
        return files;
    }

    private async Task<long> ExtractAsync(IReadOnlyList<string> files, RestoreRequest request, CancellationToken cancellationToken)
    {
        long bytes = 0;
        foreach (var file in files)
        {
            var path = Path.Combine(chosen.Path, file);
            var into = file.StartsWith("pg_wal", StringComparison.Ordinal) ? Path.Combine(request.DataDirectory, "pg_wal") : request.DataDirectory;
            if (!Directory.Exists(into))
            {
                Directory.CreateDirectory(into);
                File.SetUnixFileMode(into, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            List<string> compression = Path.GetExtension(file) switch
            {
                ".gz" => ["-z"],
                ".lz4" => ["-I", "lz4"],
                ".zst" => ["--zstd"],
                _ => [],
            };
            request.Progress?.Invoke($"extracting {file}");
            List<string> args = ["-x", .. compression, "-f", path, "-C", into];
            var result = await processes.RunAsync("tar", args, TimeSpan.FromHours(12), check: false, cancellationToken: cancellationToken);
            if (result.ExitCode != 0)
            {
                throw new PgStateException($"tar could not extract {path}: {Quote(result.StandardError)}");
            }
            bytes += new FileInfo(path).Length;
        }
        TreeCopy.RefuseLinks(request.DataDirectory, chosen.Path);
        return bytes;
    }

    /// <summary>START WAL LOCATION and START TIME from backup_label.</summary>
    internal static (ulong? Lsn, DateTime? Time) ReadBackupLabel(string dataDirectory)
    {
        var label = Path.Combine(dataDirectory, "backup_label");
        if (!File.Exists(label))
        {
            return (null, null);
        }
        ulong? lsn = null;
        DateTime? time = null;
        foreach (var line in HostFiles.ReadBoundedText(label, 64 * 1024).Split('\n').Take(50))
        {
            if (line.StartsWith("START WAL LOCATION: ", StringComparison.Ordinal) && Lsn.TryParse(line["START WAL LOCATION: ".Length..].Split(' ')[0], out var l))
            {
                lsn = l;
            }
            else if (line.StartsWith("START TIME: ", StringComparison.Ordinal)
                && DateTime.TryParseExact(line["START TIME: ".Length..].Replace(" UTC", "", StringComparison.Ordinal), "yyyy-MM-dd HH:mm:ss",
                    CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            {
                time = t;
            }
        }
        return (lsn, time);
    }
}

/// <summary>Copies a backup directory tree: directories and regular files only, modes kept (run as the job's user: what it creates is that user's).</summary>
internal static class TreeCopy
{
    public static long Copy(string source, string target, Action<string>? progress, CancellationToken cancellationToken)
    {
        RefuseLinks(source, source);
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false };
        long total = 0;
        foreach (var file in Directory.EnumerateFiles(source, "*", options))
        {
            total += new FileInfo(file).Length;
        }
        long done = 0;
        var lastShown = DateTime.MinValue;
        // Parents are enumerated before their children: each directory exists before its files are copied.
        foreach (var entry in Directory.EnumerateFileSystemEntries(source, "*", options))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var destination = Path.Combine(target, Path.GetRelativePath(source, entry));
            var st = Posix.Stat(entry, followLinks: false) ?? throw new PgStateException($"{entry} disappeared during the copy (removed by retention?)");
            switch (st.Kind)
            {
                case PosixFileKind.Directory:
                    Directory.CreateDirectory(destination);
                    File.SetUnixFileMode(destination, (UnixFileMode)st.Mode);
                    break;
                case PosixFileKind.Regular:
                    // File.Copy lets the kernel copy (reflink, or sendfile): no buffer here, whatever the file's size.
                    File.Copy(entry, destination);
                    File.SetUnixFileMode(destination, (UnixFileMode)st.Mode);
                    done += st.Size;
                    break;
                default:
                    throw new PgStateException($"{entry} is a {st.Kind.ToString().ToLowerInvariant()}; a backup holds directories and regular files only");
            }
            if (progress is not null && (DateTime.UtcNow - lastShown).TotalMilliseconds >= 200)
            {
                lastShown = DateTime.UtcNow;
                progress(string.Create(CultureInfo.InvariantCulture, $"copying the backup: {done / 1048576.0:0} of {total / 1048576.0:0} MB ({(total == 0 ? 100 : 100.0 * done / total):0}%)"));
            }
        }
        progress?.Invoke(string.Create(CultureInfo.InvariantCulture, $"copying the backup: {total / 1048576.0:0} MB done"));
        return total;
    }

    /// <summary>A symbolic link in a backup (a tablespace in pg_tblspc, a linked pg_wal) would lead a restored server into production's directories.</summary>
    public static void RefuseLinks(string tree, string backup)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        foreach (var entry in Directory.EnumerateFileSystemEntries(tree, "*", options))
        {
            if (Posix.Stat(entry, followLinks: false) is { Kind: PosixFileKind.Symlink })
            {
                var link = new FileInfo(entry).LinkTarget;
                var what = Path.GetRelativePath(tree, entry).StartsWith("pg_tblspc", StringComparison.Ordinal) ? "a tablespace" : "a symbolic link";
                throw new PgStateException($"the backup {backup} holds {what}: {Path.GetRelativePath(tree, entry)} -> {link}; restoring it would lead the restored server into that directory (restores of clusters with tablespaces are not supported)");
            }
        }
    }
}
