using System.Globalization;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Checks;

public sealed record CheckThresholds(
    TimeSpan ArchiveLag, int ArchiveFreePercent, int WalFreePercent, long SlotRetentionBytes, TimeSpan ReplicationLag,
    IReadOnlyList<string> ExpectedStandbys, TimeSpan? BackupMaxAge);

/// <summary>Health checks: does archiving, WAL, slots, replication really work? Checks only; no resources.</summary>
public sealed class ChecksModule : IModule
{
    public string Name => "checks";

    public int Order => 90;

    public IBound? Bind(BindContext context)
    {
        var c = context.Spec.Mapping("checks");
        var d = context.Diagnostics;
        var thresholds = new CheckThresholds(
            c.Duration("archiveLagWarn", d)?.Value ?? TimeSpan.FromMinutes(15),
            c.Int32("archiveFreeSpaceWarn", d) ?? 10,
            c.Int32("walFreeSpaceWarn", d) ?? 10,
            c.Size("slotRetentionWarn", d)?.Value ?? context.Facts.One(HostFacts.SlotRetention)?.Bytes ?? long.MaxValue,
            c.Duration("replicationLagWarn", d)?.Value ?? TimeSpan.FromMinutes(5),
            [.. c.Strings("expectedStandbys").Select(s => s.Value)],
            c.Duration("backupMaxAge", d)?.Value);
        context.Facts.Publish(HostFacts.CheckThresholds, new CheckThresholdsFact(thresholds.BackupMaxAge));
        return new BoundChecks(thresholds);
    }
}

internal sealed class BoundChecks(CheckThresholds thresholds) : IHealthChecks
{
    public string Name => "checks";

    public async Task<IReadOnlyList<CheckResult>> CheckAsync(IHostSession host, CheckOptions options, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        var c = host.Connection;
        var archive = host.Facts.One(HostFacts.ArchiveMethod);
        var destination = archive is { Method: "copy", Destination: { } d } ? d : null;
        var major = host.Server.Major;
        // Each check on its own: one that cannot run (a catalog this pgstate does not know, on a newer
        // server) fails with the reason and the others still report.
        async Task Run(string id, Func<Task<IEnumerable<CheckResult>>> check)
        {
            try
            {
                results.AddRange(await check());
            }
            catch (Exception e) when (e is NpgsqlException or IOException or UnauthorizedAccessException or PgStateException)
            {
                var newer = major > Engine.Host.SupportedMajors.Newest
                    ? $" (PostgreSQL {host.Server.Version} is newer than {Engine.Host.SupportedMajors.Newest}, the newest this pgstate knows: its catalogs may have changed)" : "";
                results.Add(new CheckResult(id, CheckStatus.Fail, $"the {id} check could not run: {(e is PostgresException pg ? $"{pg.SqlState}: {pg.MessageText}" : e.Message)}{newer}"));
                if (c.State != System.Data.ConnectionState.Open)
                {
                    throw;
                }
            }
        }
        await Run("archiver", async () => [await ArchiverAsync(c, cancellationToken)]);
        if (archive is { Method: "pgbackrest" })
        {
            await Run("archive_tool", () => Task.FromResult<IEnumerable<CheckResult>>([ArchiveTool(host)]));
        }
        if (destination is not null)
        {
            await Run("archive_destination", async () => [await DestinationAsync(host, destination, cancellationToken)]);
            if (options.ProbeArchive)
            {
                await Run("archive_probe", async () => [await ProbeAsync(host, destination, options.ProbeTimeout, cancellationToken)]);
            }
        }
        else if (options.ProbeArchive)
        {
            results.Add(new CheckResult("archive_probe", CheckStatus.Skipped, "the probe needs archiving.method copy with a destination pgstate can look into"));
        }
        await Run("pg_wal", async () => [await WalAsync(host, cancellationToken)]);
        await Run("checkpoints", async () => [await CheckpointsAsync(c, major, cancellationToken)]);
        await Run("slots", async () => await SlotsAsync(c, major, cancellationToken));
        await Run("replication", async () => [await ReplicationAsync(c, cancellationToken)]);
        await Run("settings", async () => [await PendingRestartAsync(c, cancellationToken)]);
        await Run("clock", async () => [await ClockAsync(host, cancellationToken)]);
        return results;
    }

    /// <summary>archive-push runs pgbackrest: is it there, and does it support this server's major?</summary>
    private static CheckResult ArchiveTool(IHostSession host)
    {
        var tool = ClientTools.FindPgBackRest(host.Environment("PATH"));
        return ClientTools.Incompatibility(tool, host.Server.Major, host.Server.Version) is { } why
            ? new CheckResult("archive_tool", CheckStatus.Fail, $"archiving will fail: {why}", tool.Version)
            : new CheckResult("archive_tool", CheckStatus.Ok, $"{tool.Describe()} archives for PostgreSQL {host.Server.Version}", tool.Version);
    }

    /// <summary>
    /// Mostly requested checkpoints (rather than timed by checkpoint_timeout) usually mean WAL keeps
    /// reaching max_wal_size: more full-page writes, more WAL to archive. The counters moved from
    /// pg_stat_bgwriter to pg_stat_checkpointer in PostgreSQL 17.
    /// </summary>
    private static async Task<CheckResult> CheckpointsAsync(NpgsqlConnection c, int major, CancellationToken ct)
    {
        var sql = major >= 17
            ? "select num_timed, num_requested from pg_stat_checkpointer"
            : "select checkpoints_timed, checkpoints_req from pg_stat_bgwriter";
        await using var cmd = new NpgsqlCommand(sql, c);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var timed = r.GetInt64(0);
        var requested = r.GetInt64(1);
        var value = $"{timed} timed, {requested} requested";
        var total = timed + requested;
        return total >= 10 && requested * 2 > total
            ? new CheckResult("checkpoints", CheckStatus.Warn, $"{requested} of {total} checkpoints were requested (WAL reaching max_wal_size, CHECKPOINT, backups) rather than timed: unless backups and manual checkpoints explain it, raise max_wal_size", value)
            : new CheckResult("checkpoints", CheckStatus.Ok, $"{total} checkpoints since the statistics were reset, {requested} requested rather than timed", value);
    }

    private async Task<CheckResult> ArchiverAsync(NpgsqlConnection c, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "select current_setting('archive_mode'), current_setting('archive_command'), (select setting::int from pg_settings where name = 'archive_timeout'), " +
            "archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time, " +
            "pg_walfile_name(pg_current_wal_lsn()), now() from pg_stat_archiver", c);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var mode = r.GetString(0);
        var command = r.GetString(1);
        if (mode == "off")
        {
            return new CheckResult("archiver", CheckStatus.Skipped, "archive_mode is off");
        }
        if (string.IsNullOrWhiteSpace(command) || command == "(disabled)")
        {
            return new CheckResult("archiver", CheckStatus.Fail, "archive_mode is on but archive_command is empty: WAL piles up in pg_wal and nothing is archived");
        }
        var archived = r.GetInt64(3);
        var lastWal = r.IsDBNull(4) ? null : r.GetString(4);
        DateTime? lastTime = r.IsDBNull(5) ? null : r.GetDateTime(5);
        var failed = r.GetInt64(6);
        var failedWal = r.IsDBNull(7) ? null : r.GetString(7);
        DateTime? failedTime = r.IsDBNull(8) ? null : r.GetDateTime(8);
        var current = r.GetString(9);
        var now = r.GetDateTime(10);
        var value = $"archived {archived}, failed {failed}";
        if (failedTime is { } ft && (lastTime is null || ft > lastTime))
        {
            return new CheckResult("archiver", CheckStatus.Fail,
                $"archive_command failed for {failedWal} at {ft:u} and has not succeeded since (last success: {(lastTime is { } lt ? $"{lastWal} at {lt:u}" : "never")}); check the server log for the command's error", value);
        }
        var allowed = TimeSpan.FromSeconds(Math.Max(r.GetInt32(2), thresholds.ArchiveLag.TotalSeconds));
        if (lastTime is { } last && now - last > allowed && string.CompareOrdinal(current, lastWal) > 0)
        {
            return new CheckResult("archiver", CheckStatus.Warn, $"the last archived segment {lastWal} is {(now - last).TotalMinutes:0} min old while WAL was written since (now at {current})", value);
        }
        return new CheckResult("archiver", CheckStatus.Ok, lastWal is null ? "archiving is on; nothing archived yet" : $"last archived {lastWal} at {lastTime:u}", value);
    }

    private async Task<CheckResult> DestinationAsync(IHostSession host, string path, CancellationToken ct)
    {
        if (!Directory.Exists(path))
        {
            return new CheckResult("archive_destination", CheckStatus.Fail, $"{path} does not exist");
        }
        var serverUser = Posix.Stat(host.Server.DataDirectory) is { } dataStat ? Posix.UserName(dataStat.Uid) ?? "postgres" : "postgres";
        var owner = Posix.Stat(path) is { } st ? Posix.UserName(st.Uid) ?? st.Uid.ToString(CultureInfo.InvariantCulture) : "?";
        var context = Posix.SelinuxLabel(path) ?? "";
        string[] stat = [owner, context];
        var problems = new List<string>();
        if (stat[0] != serverUser)
        {
            problems.Add($"owned by {stat[0]}, not by the server's user {serverUser}");
        }
        var writable = Environment.UserName == serverUser
            ? await host.Processes.RunAsync("test", ["-w", path], check: false, cancellationToken: ct)
            : await host.Processes.RunAsync("runuser", ["-u", serverUser, "--", "test", "-w", path], check: false, cancellationToken: ct);
        if (writable.ExitCode != 0)
        {
            problems.Add($"not writable by {serverUser}");
        }
        var label = stat[1].Split(':') is { Length: >= 3 } parts ? parts[2] : null;
        if (label is not null && File.Exists("/sys/fs/selinux/enforce") && !PostgresLabels.Writable.Contains(label))
        {
            problems.Add($"SELinux label {label} is not one postgresql_t may write (want postgresql_db_t)");
        }
        var drive = new DriveInfo(path);
        var freePercent = drive.TotalSize == 0 ? 100 : drive.AvailableFreeSpace * 100.0 / drive.TotalSize;
        var value = $"{freePercent:0.#}% free";
        if (problems.Count > 0)
        {
            return new CheckResult("archive_destination", CheckStatus.Fail, $"{path}: {string.Join("; ", problems)}", value);
        }
        return freePercent < thresholds.ArchiveFreePercent
            ? new CheckResult("archive_destination", CheckStatus.Warn, $"{path} has only {freePercent:0.#}% free (threshold {thresholds.ArchiveFreePercent}%)", value)
            : new CheckResult("archive_destination", CheckStatus.Ok, $"{path} is {serverUser}'s and writable, {freePercent:0.#}% free", value);
    }

    private static async Task<CheckResult> ProbeAsync(IHostSession host, string path, TimeSpan timeout, CancellationToken ct)
    {
        await using (var emit = new NpgsqlCommand("select pg_logical_emit_message(false, 'pgstate', 'archive probe')", host.Connection))
        {
            await emit.ExecuteScalarAsync(ct);
        }
        string segment;
        long size;
        await using (var cmd = new NpgsqlCommand("select pg_walfile_name(pg_switch_wal()), pg_size_bytes(current_setting('wal_segment_size'))", host.Connection))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            await r.ReadAsync(ct);
            segment = r.GetString(0);
            size = r.GetInt64(1);
        }
        var file = Path.Combine(path, segment);
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < timeout)
        {
            if (File.Exists(file) && new FileInfo(file).Length == size)
            {
                return new CheckResult("archive_probe", CheckStatus.Ok, $"switched to a new segment; {segment} reached {path} in {(DateTime.UtcNow - started).TotalSeconds:0.0}s", segment);
            }
            await Task.Delay(100, ct);
        }
        return new CheckResult("archive_probe", CheckStatus.Fail, $"{segment} did not reach {path} within {timeout.TotalSeconds:0}s after pg_switch_wal()", segment);
    }

    private async Task<CheckResult> WalAsync(IHostSession host, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("select coalesce(sum(size), 0)::bigint, pg_size_bytes(current_setting('max_wal_size')) from pg_ls_waldir()", host.Connection);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var size = r.GetInt64(0);
        var max = r.GetInt64(1);
        var drive = new DriveInfo(Path.Combine(host.Server.DataDirectory, "pg_wal"));
        var freePercent = drive.TotalSize == 0 ? 100 : drive.AvailableFreeSpace * 100.0 / drive.TotalSize;
        var value = $"{size >> 20} MB of max_wal_size {max >> 20} MB, {freePercent:0.#}% free";
        if (freePercent < thresholds.WalFreePercent / 2.0)
        {
            return new CheckResult("pg_wal", CheckStatus.Fail, $"pg_wal's filesystem has only {freePercent:0.#}% free: the server stops when it is full", value);
        }
        if (size > max * 2 || freePercent < thresholds.WalFreePercent)
        {
            return new CheckResult("pg_wal", CheckStatus.Warn, size > max * 2
                ? $"pg_wal holds {size >> 20} MB, more than twice max_wal_size: archiving or a slot is holding WAL back"
                : $"pg_wal's filesystem has only {freePercent:0.#}% free", value);
        }
        return new CheckResult("pg_wal", CheckStatus.Ok, $"pg_wal holds {size >> 20} MB (max_wal_size {max >> 20} MB)", value);
    }

    private async Task<IEnumerable<CheckResult>> SlotsAsync(NpgsqlConnection c, int major, CancellationToken ct)
    {
        // 17 says why a slot was invalidated and since when an inactive one is idle; 16 flags logical slots in conflict.
        var extra = major >= 17 ? "invalidation_reason, inactive_since"
            : major >= 16 ? "case when conflicting then 'conflicting' end, null::timestamptz"
            : "null::text, null::timestamptz";
        await using var cmd = new NpgsqlCommand(
            "select slot_name::text, active, wal_status, case when restart_lsn is null then null else pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint end, " +
            extra + " from pg_replication_slots order by 1", c);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var results = new List<CheckResult>();
        while (await r.ReadAsync(ct))
        {
            var name = r.GetString(0);
            var active = r.GetBoolean(1);
            var status = r.IsDBNull(2) ? null : r.GetString(2);
            long? retained = r.IsDBNull(3) ? null : r.GetInt64(3);
            var invalidation = r.IsDBNull(4) ? null : r.GetString(4);
            DateTime? inactiveSince = r.IsDBNull(5) ? null : r.GetDateTime(5);
            var value = retained is { } b ? $"{b} bytes retained" : null;
            var since = inactiveSince is { } t ? $" (inactive since {t.ToUniversalTime():u})" : "";
            if (status is "lost" or "unreserved" || invalidation is not null)
            {
                var why = invalidation is null ? $"has wal_status {status}" : $"was invalidated ({invalidation}{(status is null ? "" : $", wal_status {status}")})";
                results.Add(new CheckResult($"slot:{name}", CheckStatus.Fail, $"slot {name} {why}: its consumer can no longer catch up from this server{since}", value));
            }
            else if (!active && retained > thresholds.SlotRetentionBytes)
            {
                results.Add(new CheckResult($"slot:{name}", CheckStatus.Warn, $"inactive slot {name} retains {retained >> 20} MB of WAL (threshold {thresholds.SlotRetentionBytes >> 20} MB): pg_wal grows until it is consumed or dropped{since}", value));
            }
            else
            {
                results.Add(new CheckResult($"slot:{name}", CheckStatus.Ok, $"slot {name} is {(active ? "active" : "inactive")}, wal_status {status}", value));
            }
        }
        return results;
    }

    private async Task<CheckResult> ReplicationAsync(NpgsqlConnection c, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "select application_name, coalesce(extract(epoch from greatest(write_lag, flush_lag, replay_lag)), 0)::float8 from pg_stat_replication", c);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var connected = new Dictionary<string, double>(StringComparer.Ordinal);
        while (await r.ReadAsync(ct))
        {
            connected[r.GetString(0)] = r.GetDouble(1);
        }
        var missing = thresholds.ExpectedStandbys.Where(s => !connected.ContainsKey(s)).ToList();
        if (missing.Count > 0)
        {
            return new CheckResult("replication", CheckStatus.Fail, $"expected standby(s) not connected: {string.Join(", ", missing)}", $"{connected.Count} connected");
        }
        var lagging = connected.Where(x => x.Value > thresholds.ReplicationLag.TotalSeconds).ToList();
        if (lagging.Count > 0)
        {
            return new CheckResult("replication", CheckStatus.Warn, string.Join("; ", lagging.Select(l => $"{l.Key} lags {l.Value:0}s (threshold {thresholds.ReplicationLag.TotalSeconds:0}s)")));
        }
        return new CheckResult("replication", CheckStatus.Ok, connected.Count == 0 ? "no standbys connected (none expected)" : $"{connected.Count} standby(s) connected within the lag threshold", $"{connected.Count} connected");
    }

    private static async Task<CheckResult> PendingRestartAsync(NpgsqlConnection c, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("select coalesce(string_agg(name, ', ' order by name), '') from pg_settings where pending_restart", c);
        var names = (string)(await cmd.ExecuteScalarAsync(ct))!;
        return names.Length == 0
            ? new CheckResult("settings", CheckStatus.Ok, "no setting waits for a restart")
            : new CheckResult("settings", CheckStatus.Warn, $"written but waiting for a PostgreSQL restart: {names}", names);
    }

    private static async Task<CheckResult> ClockAsync(IHostSession host, CancellationToken ct)
    {
        if (!Directory.Exists("/run/systemd/system"))
        {
            return new CheckResult("clock", CheckStatus.Skipped, "systemd is not PID 1 here: timedatectl cannot say whether the clock is synchronised");
        }
        var result = await host.Processes.RunAsync("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], check: false, cancellationToken: ct);
        return result.StandardOutput.Trim() == "yes"
            ? new CheckResult("clock", CheckStatus.Ok, "the clock is NTP-synchronised")
            : new CheckResult("clock", CheckStatus.Warn, "the clock is not NTP-synchronised: PITR targets and WAL timestamps may be off", result.StandardOutput.Trim());
    }
}
