using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>What a drill or a restore runs with: the host, the backup, its drill settings, the archive, and where to report.</summary>
public sealed record RestoreContext(
    HostManifest Host,
    DesiredBackup Backup,
    DesiredDrill Drill,
    ArchiveMethodFact? Archive,
    PgBackRestFact? PgBackRest,
    ProcessRunner Processes,
    Action<string> Log,
    Action<string>? Progress);

/// <summary>
/// `pgstate restore drill NAME` and `pgstate restore NAME --to DIR`: choose the backup for the
/// target, let its <see cref="IRestoreSource"/> fill a directory and write the recovery settings,
/// start the server's own binaries on it, wait (bounded) for recovery to end, probe, measure, stop,
/// clean up. The drill's server has a private socket, no TCP, archive_mode off: nothing of the
/// production cluster is touched (its data directory, port, socket, configuration, archive).
/// </summary>
public sealed class DrillRunner(RestoreContext context)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    private DesiredBackup Backup => context.Backup;

    private DesiredDrill Drill => context.Drill;

    private string DataDirectory => context.Host.DataDirectory?.Value
        ?? throw new PgStateException($"a restore of backup {Backup.Name} needs spec.dataDirectory (the server's binaries, its owner)");

    /// <summary>The data directory's owner, the user a restore runs as (the verb made a root process that user already).</summary>
    private JobIdentity Identity()
    {
        var job = BoundBackups.JobFor(DataDirectory);
        var me = Posix.UserName(Posix.EffectiveUid);
        if (me != job.User)
        {
            throw new PgStateException($"a restore runs the server as {job.User}, the owner of {DataDirectory}: run it as root (it becomes {job.User}) or as {job.User}, not as {me ?? "uid " + Posix.EffectiveUid}");
        }
        return job;
    }

    private string RestoreCommand() =>
        RestoreCommands.For(context.Archive, context.PgBackRest, out var error) ?? throw new PgStateException(error!);

    /// <summary>The backup to restore for a target and the source that restores it.</summary>
    private Task<IRestoreSource> SourceAsync(DateTime? targetUtc, CancellationToken cancellationToken) =>
        RestoreSources.ForAsync(Backup, targetUtc, context.Processes, context.PgBackRest, BoundBackups.JobFor(DataDirectory), cancellationToken);

    /// <summary>pg_ctl of the running server (postmaster.pid, /proc), checked against the backup's major version.</summary>
    private async Task<string> PgCtlAsync(int major, CancellationToken cancellationToken)
    {
        var pgCtl = PostgresPrograms.ServerProgram("pg_ctl", DataDirectory, major);
        var version = await context.Processes.RunAsync(pgCtl, ["--version"], TimeSpan.FromSeconds(30), check: false, cancellationToken: cancellationToken);
        if (MajorOf(version.StandardOutput) is { } found && found != major)
        {
            var other = PostgresPrograms.Candidates(major).Take(2).Select(d => Path.Combine(d, "pg_ctl")).FirstOrDefault(File.Exists);
            return other ?? throw new PgStateException($"the backup is PostgreSQL {major}, the server runs {pgCtl} of PostgreSQL {found}, and no PostgreSQL {major} binaries are installed");
        }
        return pgCtl;
    }

    private static int? MajorOf(string versionOutput)
    {
        var word = versionOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();
        return word is not null && int.TryParse(word.Split('.')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : null;
    }

    /// <summary>PG_VERSION of a restored data directory.</summary>
    private static int MajorOfDirectory(string dataDirectory)
    {
        var file = Path.Combine(dataDirectory, "PG_VERSION");
        return File.Exists(file) && int.TryParse(HostFiles.ReadBoundedText(file, 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new PgStateException($"{dataDirectory} holds no PG_VERSION: the restore did not bring a data directory");
    }

    /// <summary>The drill: restore into a scratch directory, recover to the target, probe, measure, stop, remove it.</summary>
    public async Task<DrillReport> DrillAsync(DrillTarget target, bool keep, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var targetUtc = target.Resolve(started);
        var report = new DrillReport
        {
            Name = Backup.Name,
            Host = context.Host.Name,
            Kind = "drill",
            StartedUtc = started,
            Target = target.Describe(),
            TargetUtc = targetUtc ?? started,
            MaxRpoSeconds = Drill.MaxRpo?.TotalSeconds,
            MaxRtoSeconds = Drill.MaxRto?.TotalSeconds,
        };
        var failures = new List<string>();
        string? scratch = null;
        string? socketDirectory = null;
        TemporaryServer? server = null;
        ServerLog? log = null;
        FileStream? drillLock = null;
        Task<string>? verification = null;
        try
        {
            var job = Identity();
            CheckWorkDirectory();
            // First what an earlier drill left (killed, or kept): whatever this one finds wrong next, the host is tidy.
            CreatePrivateDirectory(Drill.WorkDirectory);
            drillLock = AcquireLock();
            await RemoveStaleAsync(job, cancellationToken);
            var restoreCommand = RestoreCommand();
            var source = await SourceAsync(targetUtc, cancellationToken);
            report = report with { Backup = source.Chosen.Source, BackupStartedUtc = source.Chosen.StartedUtc, BackupEndedUtc = source.Chosen.EndedUtc, RestoreCommand = restoreCommand };

            scratch = Path.Combine(Drill.WorkDirectory, $".pgstate-drill-{Backup.Name}-{started.ToString(BackupRunner.StampFormat, CultureInfo.InvariantCulture)}");
            CreatePrivateDirectory(scratch, fresh: true);
            await File.WriteAllTextAsync(Path.Combine(scratch, "pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken);
            var data = Path.Combine(scratch, "data");
            CreatePrivateDirectory(data, fresh: true);
            report = report with { Directory = scratch, Kept = keep };

            context.Log($"restoring {source.Description} into {data}");
            var restored = await source.RestoreAsync(new RestoreRequest(data, targetUtc, restoreCommand,
                $"restore drill of backup {Backup.Name} (target {target.Describe()})", job, context.Log, context.Progress), cancellationToken);
            verification = restored.Verification;
            var copied = DateTime.UtcNow;
            report = report with
            {
                BackupBytes = restored.Bytes,
                BackupStartedUtc = restored.BackupStartedUtc,
                BackupStartLsn = restored.StartLsn is { } l ? Lsn.Format(l) : null,
                RestoreCommand = restored.RestoreCommand ?? report.RestoreCommand,
                CopySeconds = (copied - started).TotalSeconds,
            };
            var major = MajorOfDirectory(data);
            var pgCtl = await PgCtlAsync(major, cancellationToken);

            // The drill's own configuration beside the copy: trust on its private socket only, no ident map.
            var hba = Path.Combine(scratch, "pg_hba.conf");
            var ident = Path.Combine(scratch, "pg_ident.conf");
            await WritePrivateAsync(hba, "# pgstate restore drill: only the drill's private socket (mode 0700) reaches this server\nlocal all all trust\n", cancellationToken);
            await WritePrivateAsync(ident, "", cancellationToken);
            if (!File.Exists(Path.Combine(data, "postgresql.conf")))
            {
                await WritePrivateAsync(Path.Combine(data, "postgresql.conf"),
                    "# pgstate restore drill: the backup holds no postgresql.conf (its configuration lives outside the data directory)\n", cancellationToken);
            }
            var port = FreePort();
            socketDirectory = SocketDirectory(scratch, port);
            var settings = TemporaryServer.IsolationSettings(data, socketDirectory, port, hba, ident, major);
            settings.AddRange(Drill.Settings);
            log = new ServerLog(Path.Combine(scratch, "server.log"));
            server = new TemporaryServer(pgCtl, data, log.Path, settings, context.Processes);
            context.Log($"starting {pgCtl} on the copy (private socket {socketDirectory}, port {port}, no TCP, archive_mode off)");
            var serverStart = DateTime.UtcNow;
            await server.StartAsync(cancellationToken);
            await WaitForRecoveryAsync(server, log, Drill.Timeout, cancellationToken);
            var ready = DateTime.UtcNow;
            log.Read();
            context.Log("recovery finished; the server accepts connections");
            // pg_verifybackup ran beside the copy and the replay: a damaged backup fails the drill, quoting it.
            report = report with { Verification = await verification };
            verification = null;

            var facts = await ReadRecoveryAsync(socketDirectory, port, cancellationToken);
            var endLsn = log.RedoDone ?? facts.ReplayLsn;
            var lastTransaction = facts.LastTransaction ?? log.LastTransaction?.UtcDateTime;
            var walBytes = endLsn is { } e && restored.StartLsn is { } s && e > s ? (long)(e - s) : 0;
            var replaySeconds = (ready - serverStart).TotalSeconds;
            var rpo = Math.Max(0, ((targetUtc ?? started) - (lastTransaction ?? restored.BackupEndedUtc ?? restored.BackupStartedUtc)).TotalSeconds);
            var rto = (ready - started).TotalSeconds;
            report = Recovered(report, log, endLsn, lastTransaction, walBytes) with
            {
                ReplaySeconds = replaySeconds,
                ReplayMegabytesPerSecond = replaySeconds > 0 ? walBytes / 1048576.0 / replaySeconds : null,
                RpoSeconds = rpo,
                RtoSeconds = rto,
            };
            if (target is DrillTarget.Latest && GapAfter(log, data, facts.SegmentSize) is { } gap)
            {
                failures.Add(gap);
            }
            var probes = await RunProbesAsync(socketDirectory, port, major, cancellationToken);
            report = report with { Probes = probes };
            // A probe's message quotes the database's value: one line, escaped (a newline in a value must not make report lines of its own).
            failures.AddRange(probes.Where(p => !p.Passed).Select(p => $"probe {p.Name}: {PgState.Engine.Rendering.SafeText.Text(p.Message)}"));
            if (Drill.MaxRpo is { } maxRpo && rpo > maxRpo.TotalSeconds)
            {
                failures.Add($"RPO {DrillReports.Seconds(rpo)} exceeds maxRpo {Durations.Format(maxRpo)} (the last replayed transaction was at {RestorableBackups.Stamp(lastTransaction ?? DateTime.MinValue)})");
            }
            if (Drill.MaxRto is { } maxRto && rto > maxRto.TotalSeconds)
            {
                failures.Add($"RTO {DrillReports.Seconds(rto)} exceeds maxRto {Durations.Format(maxRto)}");
            }
        }
        catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
        {
            // A damaged backup explains what followed (a server that did not start, a recovery that failed): say it first.
            if (verification is not null)
            {
                try
                {
                    report = report with { Verification = await verification };
                }
                catch (PgStateException damaged)
                {
                    report = report with { Verification = "failed" };
                    if (damaged.Message != e.Message)
                    {
                        failures.Add(damaged.Message);
                    }
                }
                catch (OperationCanceledException)
                {
                }
                verification = null;
            }
            if (log is not null && scratch is not null)
            {
                log.Read();
                report = Recovered(report, log, log.RedoDone, log.LastTransaction?.UtcDateTime, 0);
                // Recovery that ended early ("ended before the configured recovery target") usually met a hole in the archive: name it first.
                if (GapAfter(log, Path.Combine(scratch, "data"), SegmentSizeIn(Path.Combine(scratch, "data", "pg_wal"))) is { } gap)
                {
                    failures.Add(gap);
                }
            }
            failures.Add(e.Message);
        }
        finally
        {
            if (server is not null)
            {
                await server.StopAsync(immediate: !keep);
            }
            if (verification is not null)
            {
                // Interrupted: the verification's process is cancelled with the run; wait for it to end.
                await verification.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
            if (socketDirectory is not null && scratch is not null && !socketDirectory.StartsWith(scratch + "/", StringComparison.Ordinal))
            {
                DeleteQuietly(socketDirectory);
            }
            if (scratch is not null && !keep)
            {
                DeleteQuietly(scratch);
            }
            drillLock?.Dispose();
        }
        var ended = DateTime.UtcNow;
        var previous = TryReadPrevious();
        report = report with
        {
            EndedUtc = ended,
            Failures = failures,
            Passed = failures.Count == 0,
            LastSuccessUtc = failures.Count == 0 ? ended : previous?.LastSuccessUtc,
        };
        try
        {
            await DrillReports.WriteStatusAsync(Backup, report, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The check would go on reading the previous drill's verdict: this drill fails, and says why.
            report = report with { Passed = false, Failures = [.. report.Failures, $"cannot write the status file {DrillReports.StatusFile(Backup)}: {e.Message}"] };
        }
        return report;
    }

    /// <summary>Where a restore may go: a path pg_ctl's shell line can carry, not the running server's directory, empty or new. Checked before anything is made.</summary>
    public void CheckRestoreDirectory(string directory)
    {
        directory = Path.GetFullPath(directory);
        _ = RestoreCommand();   // a manifest that cannot restore at all is said before anything is made
        if (directory.Any(c => c is '"' or '\'' or '\\' or '$' or '`' || char.IsControl(c)))
        {
            // pg_ctl puts -D and -l into a shell command line between double quotes.
            throw new PgStateException($"{TextSafety.Printable(directory)} holds a quote, backslash, $ or `, which pg_ctl's command line cannot carry safely: restore elsewhere");
        }
        var production = DrillBinder.Normalize(DataDirectory);
        if (DrillBinder.Inside(DrillLiveChecks.RealPath(directory), DrillLiveChecks.RealPath(production)) && ProductionRuns())
        {
            throw new PgStateException($"{directory} is {(directory == production ? "" : "inside ")}the data directory of the running server ({production}): stop it and move its directory aside first, or restore elsewhere");
        }
        if (Posix.FileKind(directory, followLinks: false) is { } kind && kind != PosixFileKind.Directory)
        {
            throw new PgStateException($"{directory} is a {kind.ToString().ToLowerInvariant()}, not a directory: a restore fills an empty (or new) directory");
        }
        if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw new PgStateException($"{directory} is not empty: a restore fills an empty (or new) directory (one left by an interrupted restore can be removed)");
        }
    }

    /// <summary>
    /// The real restore: the same source and recovery settings into a directory the operator names.
    /// Without --start it leaves a directory ready to start; with it, starts it with its own
    /// configuration and waits (bounded) until it is promoted.
    /// </summary>
    public async Task<(DrillReport Report, IReadOnlyList<string> Next, bool StartRefused)> RestoreAsync(string directory, DrillTarget target, bool start, TimeSpan timeout,
        CancellationToken cancellationToken, bool created = false)
    {
        var started = DateTime.UtcNow;
        var targetUtc = target.Resolve(started);
        directory = Path.GetFullPath(directory);
        var report = new DrillReport
        {
            Name = Backup.Name,
            Host = context.Host.Name,
            Kind = "restore",
            StartedUtc = started,
            Target = target.Describe(),
            TargetUtc = targetUtc ?? started,
            Directory = directory,
        };
        var next = new List<string>();
        var job = Identity();
        var restoreCommand = RestoreCommand();
        CheckRestoreDirectory(directory);
        var source = await SourceAsync(targetUtc, cancellationToken);
        created |= !Directory.Exists(directory);
        CreatePrivateDirectory(directory);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        context.Log($"restoring {source.Description} into {directory}");
        RestoredBackup restored;
        try
        {
            restored = await source.RestoreAsync(new RestoreRequest(directory, targetUtc, restoreCommand,
                $"pgstate restore of backup {Backup.Name} (target {target.Describe()})", job, context.Log, context.Progress), cancellationToken);
        }
        catch
        {
            // A half-restored directory is worse than none: leave it as it was (gone, or empty).
            if (created)
            {
                DeleteQuietly(directory);
            }
            else
            {
                foreach (var entry in Directory.EnumerateFileSystemEntries(directory))
                {
                    if (Directory.Exists(entry))
                    {
                        DeleteQuietly(entry);
                    }
                    else
                    {
                        File.Delete(entry);
                    }
                }
            }
            throw;
        }
        var pgCtl = await PgCtlAsync(MajorOfDirectory(directory), cancellationToken);
        report = report with
        {
            Backup = source.Chosen.Source,
            BackupStartedUtc = restored.BackupStartedUtc,
            BackupEndedUtc = restored.BackupEndedUtc,
            BackupBytes = restored.Bytes,
            BackupStartLsn = restored.StartLsn is { } l ? Lsn.Format(l) : null,
            RestoreCommand = restored.RestoreCommand ?? restoreCommand,
            CopySeconds = (DateTime.UtcNow - started).TotalSeconds,
        };
        async Task<string> VerifiedAsync()
        {
            try
            {
                return await restored.Verification;
            }
            catch (PgStateException damaged)
            {
                throw new PgStateException($"{damaged.Message}\n{directory} holds a copy of this damaged backup, stopped: start it only if no other backup is left");
            }
        }
        var hasConfig = File.Exists(Path.Combine(directory, "postgresql.conf"));
        var logFile = Path.Combine(directory, "pgstate-restore.log");
        // The operator who started it as root starts the server as its owner.
        var asUser = Posix.StartedAsRoot ? $"runuser -u {job.User} -- " : "";
        if (start && !hasConfig)
        {
            // Its configuration lives elsewhere (/etc/postgresql/N/main) and names production's data directory: never started with it.
            next.Add($"Not started (--start): the backup holds no postgresql.conf, and the configuration it ran with names the production data directory; start it as below.");
        }
        if (!start || !hasConfig)
        {
            next.Add($"The recovery settings are at the end of {Path.Combine(directory, "postgresql.auto.conf")} (restore_command, recovery_target_time, recovery_target_action = promote) with {Path.Combine(directory, "recovery.signal")}.");
            if (!hasConfig)
            {
                next.Add($"The backup holds no postgresql.conf: its configuration lives outside the data directory (e.g. /etc/postgresql/N/main). Copy it in first — " +
                    $"postgresql.conf, pg_hba.conf, pg_ident.conf into {directory}, owned by {job.User} — and in the copy remove data_directory, hba_file, ident_file " +
                    "and external_pid_file, and set a port nothing else uses while the original runs.");
            }
            next.Add($"Check archive_mode before you start it: once promoted, a server with archive_mode on archives its new timeline into the archive (right for a replacement, wrong beside a running original).");
            // Printed to be pasted into a shell: every path single-quoted (restore --to refuses quotes, so none can close it).
            next.Add($"Start it: {asUser}'{pgCtl}' start -D '{directory}' -l '{logFile}'" + (hasConfig ? $"   (or pgstate restore {Backup.Name} … --start)" : ""));
            next.Add("It replays WAL from the archive, stops at the target and promotes itself; then point applications (and the manifest's dataDirectory) at it.");
            report = report with { Verification = await VerifiedAsync(), EndedUtc = DateTime.UtcNow, Passed = true };
            return (report, next, start);
        }
        // Its own configuration; only the language of its messages for this start, so the log can be followed.
        var server = new TemporaryServer(pgCtl, directory, logFile, [("lc_messages", "C")], context.Processes);
        var log = new ServerLog(logFile);
        var serverStart = DateTime.UtcNow;
        string verified;
        try
        {
            // Started beside pg_verifybackup, like a drill (the drill's RTO is this restore's); handed over only once both are done.
            await server.StartAsync(cancellationToken);
            await WaitForRecoveryAsync(server, log, timeout, cancellationToken);
        }
        catch (PgStateException failed)
        {
            await server.StopAsync();
            await restored.Verification.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw restored.Verification.IsFaulted && restored.Verification.Exception?.InnerException is PgStateException damaged
                ? new PgStateException($"{damaged.Message}\nthen: {failed.Message}")
                : failed;
        }
        var ready = DateTime.UtcNow;
        try
        {
            verified = await VerifiedAsync();
        }
        catch (PgStateException)
        {
            await server.StopAsync();
            throw;
        }
        log.Read();
        var walBytes = log.RedoDone is { } e && restored.StartLsn is { } s && e > s ? (long)(e - s) : 0;
        var replaySeconds = (ready - serverStart).TotalSeconds;
        report = Recovered(report, log, log.RedoDone, log.LastTransaction?.UtcDateTime, walBytes) with
        {
            ReplaySeconds = replaySeconds,
            ReplayMegabytesPerSecond = replaySeconds > 0 ? walBytes / 1048576.0 / replaySeconds : null,
            RtoSeconds = (ready - started).TotalSeconds,
            RpoSeconds = log.LastTransaction is { } tx ? Math.Max(0, ((targetUtc ?? started) - tx.UtcDateTime).TotalSeconds) : null,
            Verification = verified,
            EndedUtc = DateTime.UtcNow,
            Passed = true,
        };
        next.Add($"The server runs on {directory} with its own configuration (log: {logFile}); it was promoted at the target.");
        next.Add($"Remove the block between \"{RecoverySettings.BeginMarker}\" and \"{RecoverySettings.EndMarker}\" from {Path.Combine(directory, "postgresql.auto.conf")} at your next maintenance.");
        next.Add($"Stop it: {asUser}{pgCtl} stop -D {directory} -m fast");
        return (report, next, false);
    }

    private bool ProductionRuns()
    {
        var pid = Path.Combine(DataDirectory, "postmaster.pid");
        try
        {
            return File.Exists(pid) && int.TryParse(HostFiles.ReadBoundedText(pid, 4096).Split('\n')[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var p) && Posix.ProcessExists(p);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static DrillReport Recovered(DrillReport report, ServerLog log, ulong? endLsn, DateTime? lastTransaction, long walBytes) => report with
    {
        SegmentsFromArchive = log.SegmentsRestored,
        FirstSegment = log.FirstSegment,
        LastSegment = log.LastSegment,
        RecoveryEndLsn = endLsn is { } e ? Lsn.Format(e) : null,
        LastTransactionUtc = lastTransaction,
        StoppedAt = log.Stopping,
        Timeline = log.NewTimeline,
        WalBytes = walBytes,
    };

    /// <summary>
    /// Waits until the server accepts connections (recovery ended and it promoted), showing progress;
    /// throws with the server's own log lines when it stops, and with how far recovery got when the
    /// time runs out.
    /// </summary>
    private async Task WaitForRecoveryAsync(TemporaryServer server, ServerLog log, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var deadline = started + timeout;
        var sawPidFile = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            log.Read();
            var state = server.State();
            // postmaster.pid says "ready" for a hot standby too: the log's "ready to accept connections" (not read-only) says promoted.
            if (state is { PidFile: true, Alive: true, Status: "ready" } && log.Promoted)
            {
                return;
            }
            sawPidFile |= state.PidFile;
            context.Progress?.Invoke(log.SegmentsRestored == 0
                ? "starting the server on the copy…"
                : $"replaying WAL: {log.SegmentsRestored} segment(s) restored from the archive, the last {log.LastSegment}");
            // A postmaster writes postmaster.pid before anything else it logs: a log without one, after a moment, is a start that failed
            // (a configuration file it cannot read is reported without FATAL:).
            var gone = (state.PidFile && !state.Alive) || (sawPidFile && !state.PidFile)
                || (!state.PidFile && (log.Problems.Any(p => p.Contains("FATAL:", StringComparison.Ordinal) || p.Contains("PANIC:", StringComparison.Ordinal))
                    || (log.Recent.Count > 0 && DateTime.UtcNow - started > TimeSpan.FromSeconds(3)) || DateTime.UtcNow - started > TimeSpan.FromMinutes(1)));
            if (gone)
            {
                await Task.Delay(Poll, CancellationToken.None);
                log.Read();
                throw new PgStateException(log.RedoStart is null && log.SegmentsRestored == 0
                    ? $"the restored backup did not start; the server's log ({log.Path}) says:\n    {log.Quote()}"
                    : $"recovery stopped after {log.SegmentsRestored} segment(s) from the archive{(log.LastSegment is { } last ? $" (the last {last})" : "")}; the server's log says:\n    {log.Quote()}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new PgStateException($"recovery did not finish within {Durations.Format(timeout)}: " +
                    (log.SegmentsRestored > 0
                        ? $"it had restored {log.SegmentsRestored} segment(s) from the archive, the last {log.LastSegment}" + (log.RedoStart is { } r ? $" (redo started at {Lsn.Format(r)})" : "")
                        : log.Recent.Count == 0 ? "the server had not written to its log yet"
                        : $"no segment came from the archive yet; the last lines of the log:\n    {string.Join("\n    ", log.Recent.TakeLast(5))}"));
            }
            await Task.Delay(Poll, cancellationToken);
        }
    }

    private sealed record RecoveryFacts(ulong? ReplayLsn, DateTime? LastTransaction, long SegmentSize);

    private NpgsqlConnectionStringBuilder Connection(string socketDirectory, int port, string database) => new()
    {
        Host = socketDirectory,
        Port = port,
        Username = context.Host.Connection.User,
        Database = database,
        Pooling = false,
        Timeout = 30,
        CommandTimeout = 330,
        ApplicationName = "pgstate-drill",
        Options = "-c default_transaction_read_only=on -c statement_timeout=300s",
    };

    private async Task<RecoveryFacts> ReadRecoveryAsync(string socketDirectory, int port, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(Connection(socketDirectory, port, context.Host.Connection.Database).ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand(
                "select pg_last_wal_replay_lsn()::text, to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), current_setting('wal_segment_size')", connection);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            ulong? lsn = !reader.IsDBNull(0) && Lsn.TryParse(reader.GetString(0), out var l) ? l : null;
            DateTime? tx = !reader.IsDBNull(1) && DateTime.TryParseExact(reader.GetString(1), "yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : null;
            var size = Sizes.TryParse(reader.GetString(2), out var b, out _) ? b : 16L * 1024 * 1024;
            return new RecoveryFacts(lsn, tx, size);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw new PgStateException($"cannot connect to the recovered server as {context.Host.Connection.User}: {Describe(e)}");
        }
    }

    /// <summary>
    /// The probes run as a role made for them on the drill's server (never the superuser): it reads every
    /// table (pg_read_all_data from 14; on 13, SELECT on the tables of the probe's database) and the
    /// statistics views (pg_monitor), and cannot write files (lo_export, COPY TO), read server files,
    /// signal superuser backends or change settings — whatever the probe's text manages to say, the
    /// drill's server runs as production's OS user.
    /// </summary>
    private async Task<string> CreateProbeRoleAsync(string socketDirectory, int port, int major, IEnumerable<string> databases, CancellationToken cancellationToken)
    {
        var role = $"pgstate_drill_probe_{Environment.ProcessId}";
        var admin = Connection(socketDirectory, port, context.Host.Connection.Database);
        admin.Options = "-c statement_timeout=60s";
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            var grants = major >= 14 ? "pg_read_all_data, pg_monitor" : "pg_monitor";
            await using var cmd = new NpgsqlCommand(
                $"create role {Sql.Identifier(role)} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls; grant {grants} to {Sql.Identifier(role)}", connection);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        if (major < 14)
        {
            foreach (var database in databases.Distinct(StringComparer.Ordinal))
            {
                admin.Database = database;
                await using var connection = new NpgsqlConnection(admin.ConnectionString);
                await connection.OpenAsync(cancellationToken);
                await using var cmd = new NpgsqlCommand(
                    "do $$ declare n record; begin for n in select nspname from pg_namespace where left(nspname, 3) <> 'pg_' and nspname <> 'information_schema' loop " +
                    $"execute format('grant usage on schema %I to %I', n.nspname, {Sql.Literal(role)}); execute format('grant select on all tables in schema %I to %I', n.nspname, {Sql.Literal(role)}); end loop; end $$", connection);
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        return role;
    }

    private async Task<IReadOnlyList<DrillProbeResult>> RunProbesAsync(string socketDirectory, int port, int major, CancellationToken cancellationToken)
    {
        var results = new List<DrillProbeResult>();
        if (Drill.Probes.Count == 0)
        {
            return results;
        }
        string role;
        try
        {
            role = await CreateProbeRoleAsync(socketDirectory, port, major, Drill.Probes.Select(p => p.Database ?? context.Host.Connection.Database), cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return [.. Drill.Probes.Select(p => new DrillProbeResult(p.Name, null, false, $"not run: the probes' role could not be made on the drill's server: {Describe(e)}"))];
        }
        foreach (var probe in Drill.Probes)
        {
            var database = probe.Database ?? context.Host.Connection.Database;
            try
            {
                var builder = Connection(socketDirectory, port, database);
                builder.Username = role;
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                // The probe, nested as a subquery: one query, its first column as the server prints it.
                await using var cmd = new NpgsqlCommand($"select probe.x::text from (\n{ProbeSql.WithoutFinalSemicolon(probe.Sql)}\n) as probe(x) limit 2", connection, transaction);
                await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
                var rows = new List<string?>();
                while (rows.Count < 2 && await reader.ReadAsync(cancellationToken))
                {
                    rows.Add(reader.IsDBNull(0) ? null : reader.GetString(0));
                }
                if (rows.Count != 1)
                {
                    results.Add(new DrillProbeResult(probe.Name, null, false, rows.Count == 0 ? "returned no row (a probe returns exactly one)" : "returned more than one row (a probe returns exactly one)"));
                    continue;
                }
                var why = probe.Judge(rows[0]);
                results.Add(new DrillProbeResult(probe.Name, rows[0], why is null, why ?? "ok"));
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                results.Add(new DrillProbeResult(probe.Name, null, false, $"failed on database {database}: {Describe(e)}"));
            }
        }
        return results;
    }

    private static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        NpgsqlException { InnerException: { } inner } => inner.Message,
        _ => e.Message,
    };

    /// <summary>
    /// For an archive pgstate can list (method copy): a segment missing after the last one recovery
    /// restored, while later ones are there — recovery took the gap for the end of the archive.
    /// </summary>
    private string? GapAfter(ServerLog log, string dataDirectory, long segmentSize)
    {
        if (context.Archive is not { Method: "copy", Destination: { } archive } || !Directory.Exists(archive))
        {
            return null;
        }
        var lastName = log.LastSegment ?? LastSegmentIn(Path.Combine(dataDirectory, "pg_wal"));
        if (lastName is null || !WalSegment.TryParse(lastName, segmentSize, out var last))
        {
            return null;
        }
        var gap = WalGap.Find(Directory.EnumerateFiles(archive).Select(Path.GetFileName).OfType<string>(), last, segmentSize);
        return gap is null ? null
            : $"missing WAL segment {gap.FirstMissing.Name(segmentSize)}: recovery ended after {lastName} (LSN {Lsn.Format(gap.FirstMissing.StartLsn(segmentSize))}), " +
              $"but the archive {archive} holds {gap.NextPresent.Name(segmentSize)} … {gap.LastInArchive.Name(segmentSize)} after a gap of {gap.Count} segment(s) " +
              $"({gap.FirstMissing.Name(segmentSize)}{(gap.Count > 1 ? " … " + gap.LastMissing.Name(segmentSize) : "")}): a restore loses everything written after {Lsn.Format(gap.FirstMissing.StartLsn(segmentSize))}";
    }

    /// <summary>The WAL segment size, from a segment the backup brought (16 MB when there is none).</summary>
    private static long SegmentSizeIn(string walDirectory) =>
        Directory.Exists(walDirectory)
            ? Directory.EnumerateFiles(walDirectory).Where(f => Path.GetFileName(f) is { Length: 24 } n && n.All(char.IsAsciiHexDigit)).Select(f => new FileInfo(f).Length).FirstOrDefault(16L * 1024 * 1024)
            : 16L * 1024 * 1024;

    private static string? LastSegmentIn(string walDirectory) =>
        Directory.Exists(walDirectory) ? Directory.EnumerateFiles(walDirectory).Select(Path.GetFileName).OfType<string>().Where(n => n.Length == 24 && n.All(char.IsAsciiHexDigit)).Max(StringComparer.Ordinal) : null;

    private DrillReport? TryReadPrevious()
    {
        try
        {
            return DrillReports.ReadStatus(DrillReports.StatusFile(Backup));
        }
        catch (PgStateException)
        {
            return null;
        }
    }

    private FileStream AcquireLock()
    {
        var path = Path.Combine(Drill.WorkDirectory, $".pgstate-drill-{Backup.Name}.lock");
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} since {DateTime.UtcNow:O}\n"));
            stream.Flush();
            return stream;
        }
        catch (UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot open the lock file {path}: permission denied");
        }
        catch (IOException)
        {
            throw new PgStateException($"another drill of backup {Backup.Name} is running ({(File.Exists(path) ? HostFiles.ReadBoundedText(path, 4096).Trim() : "lock held")})");
        }
    }

    /// <summary>Scratch directories of drills whose process is gone (killed): their server is stopped, the directory removed.</summary>
    /// <summary>
    /// What validate checks, again where the drill runs, on real paths (links followed): the scheduled
    /// drill does not run validate, and a link can appear between the two.
    /// </summary>
    private void CheckWorkDirectory()
    {
        if (DrillLiveChecks.WorkDirectoryProblems(Backup, Drill, DataDirectory, context.Archive).FirstOrDefault() is { } problem)
        {
            throw new PgStateException($"{problem}; nothing was done");
        }
        var work = DrillLiveChecks.RealPath(Drill.WorkDirectory);
        foreach (var entry in BackupRunner.List(Backup.Destination))
        {
            if (DrillBinder.Inside(work, DrillLiveChecks.RealPath(entry.Path)))
            {
                throw new PgStateException($"the drill's work directory {Drill.WorkDirectory} is inside the backup {entry.Path}: a drill must not write into a backup it may restore; nothing was done");
            }
        }
    }

    private async Task RemoveStaleAsync(JobIdentity job, CancellationToken cancellationToken)
    {
        var production = DrillLiveChecks.RealPath(DataDirectory);
        foreach (var dir in Directory.EnumerateDirectories(Drill.WorkDirectory, $".pgstate-drill-{Backup.Name}-*"))
        {
            // Whoever can write the work directory can plant a link: a link is removed, never followed.
            if (Posix.FileKind(dir, followLinks: false) != PosixFileKind.Directory)
            {
                context.Log($"removing {dir}, a link where a drill directory belongs (not followed)");
                File.Delete(dir);
                continue;
            }
            var pidFile = Path.Combine(dir, "pid");
            if (File.Exists(pidFile) && int.TryParse(HostFiles.ReadBoundedText(pidFile, 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId && Posix.ProcessExists(pid))
            {
                continue;
            }
            var data = Path.Combine(dir, "data");
            // Only a server whose data directory really is this scratch directory's (no link on the way, not production's) is stopped.
            var realData = DrillLiveChecks.RealPath(data);
            if (Posix.FileKind(data, followLinks: false) == PosixFileKind.Directory && realData == DrillBinder.Normalize(Path.GetFullPath(data))
                && !DrillBinder.Inside(realData, production) && PostmasterOf(data) is { } postmaster
                && Posix.ProcessDirectory(postmaster) is { } cwd && DrillBinder.Normalize(cwd) == realData)
            {
                // The pid is a live process whose working directory is this copy (a postmaster's is its data directory):
                // a postmaster.pid planted or left over from before a reboot never makes pg_ctl signal another process.
                var pgCtl = PostgresPrograms.ServerProgram("pg_ctl", DataDirectory, MajorOfDirectory(data));
                await new TemporaryServer(pgCtl, data, Path.Combine(dir, "server.log"), [], context.Processes).StopAsync(immediate: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            context.Log($"removing {dir}, left by an earlier drill");
            DeleteQuietly(dir);
        }
    }

    private static int? PostmasterOf(string data)
    {
        try
        {
            var first = HostFiles.ReadBoundedText(Path.Combine(data, "postmaster.pid"), 4096).Split('\n')[0];
            return int.TryParse(first?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void CreatePrivateDirectory(string path, bool fresh = false)
    {
        if (fresh && Directory.Exists(path))
        {
            throw new PgStateException($"{path} exists already");
        }
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static async Task WritePrivateAsync(string path, string content, CancellationToken cancellationToken)
    {
        await File.WriteAllTextAsync(path, content, cancellationToken);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>scratch/socket when the socket's path fits sun_path (107 bytes), else a private directory under /tmp.</summary>
    private static string SocketDirectory(string scratch, int port)
    {
        var inside = Path.Combine(scratch, "socket");
        var socket = Path.Combine(inside, $".s.PGSQL.{port.ToString(CultureInfo.InvariantCulture)}.lock");
        var directory = System.Text.Encoding.UTF8.GetByteCount(socket) < 100 ? inside : Directory.CreateTempSubdirectory("pgstate-drill-").FullName;
        CreatePrivateDirectory(directory);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return directory;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void DeleteQuietly(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // left for the next drill's stale-directory sweep
        }
    }
}
