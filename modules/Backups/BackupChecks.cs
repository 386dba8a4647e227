using System.Globalization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Resources;
using PgState.Modules.PgBackRest;

namespace PgState.Modules.Backups;

/// <summary>backup:NAME — the last run did not fail, its status can be read, and the newest verified backup is as young as the schedule promises.</summary>
internal static class BackupChecks
{
    public static async Task<IReadOnlyList<CheckResult>> CheckAsync(BoundBackups bound, IHostSession session, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        if (bound.Backups.Count > 0)
        {
            var problems = ToolProblems(bound.Section, session).ToList();
            var tools = string.Join(", ", Tools(bound.Section, session).Select(t => t.Describe()));
            results.Add(problems.Count > 0
                ? new CheckResult("backup_tools", CheckStatus.Fail, string.Join("; ", problems), tools)
                : new CheckResult("backup_tools", CheckStatus.Ok, $"{tools} can back up and verify PostgreSQL {session.Server.Version}", tools));
        }
        var maxAgeOverride = session.Facts.One(HostFacts.CheckThresholds)?.BackupMaxAge;
        foreach (var b in bound.Backups)
        {
            var id = $"backup:{b.Name}";
            BackupStatus? status;
            try
            {
                status = BackupRunner.ReadStatus(BackupRunner.StatusFile(b));
            }
            catch (PgStateException e)
            {
                results.Add(new CheckResult(id, CheckStatus.Fail, $"the status of backup {b.Name} cannot be read: {e.Message}"));
                continue;
            }
            if (status is null)
            {
                results.Add(new CheckResult(id, CheckStatus.Warn, $"no run of backup {b.Name} recorded in {b.Destination}"));
                continue;
            }
            if (status.Error is not null)
            {
                results.Add(new CheckResult(id, CheckStatus.Fail, $"the last run of backup {b.Name} ({status.StartedUtc.ToString("u", CultureInfo.InvariantCulture)}) failed: {status.Error}"));
                continue;
            }
            var maxAge = maxAgeOverride ?? await AllowedAgeAsync(session, b.Schedule, cancellationToken);
            if (b.IsPgBackRest)
            {
                results.Add(await PgBackRestAgeAsync(bound, session, b, maxAge, cancellationToken));
                continue;
            }
            var newest = BackupRunner.List(b.Destination).Where(e => e.Verified || !b.Verify).Select(e => File.GetLastWriteTimeUtc(e.Path + (b.Verify ? ".verified" : "")))
                .DefaultIfEmpty(DateTime.MinValue).Max();
            var age = DateTime.UtcNow - newest;
            var hours = age.TotalHours.ToString("0.#", CultureInfo.InvariantCulture);
            results.Add(newest == DateTime.MinValue
                ? new CheckResult(id, CheckStatus.Fail, $"backup {b.Name} has no verified backup in {b.Destination}")
                : age > maxAge
                    ? new CheckResult(id, CheckStatus.Fail, $"the newest verified backup of {b.Name} is {hours} h old; the schedule \"{b.Schedule}\" allows {maxAge.TotalHours:0.#} h", $"{hours} h")
                        { Metrics = new Dictionary<string, double> { ["backup_age_seconds"] = age.TotalSeconds } }
                    : new CheckResult(id, CheckStatus.Ok, $"newest verified backup of {b.Name} is {hours} h old", $"{hours} h")
                        { Metrics = new Dictionary<string, double> { ["backup_age_seconds"] = age.TotalSeconds } });
        }
        return results;
    }

    /// <summary>The client tools the backups run, found for the server's major.</summary>
    public static IEnumerable<ClientTool> Tools(BackupsSection section, IHostSession session)
    {
        var path = session.Environment("PATH");
        yield return ClientTools.FindPostgres("pg_basebackup", session.Server.Major, path);
        if (section.Backups.Any(b => b.Verify && b.Format == "plain"))
        {
            yield return ClientTools.FindPostgres("pg_verifybackup", session.Server.Major, path);
        }
    }

    /// <summary>Why a tool cannot serve this server: which tool, which version, the server's version, what to install.</summary>
    public static IEnumerable<string> ToolProblems(BackupsSection section, IHostSession session) =>
        Tools(section, session).Select(t => ClientTools.Incompatibility(t, session.Server.Major, session.Server.Version)).OfType<string>();

    /// <summary>The newest backup of the schedule's type in pgbackrest info, against the age the schedule allows.</summary>
    private static async Task<CheckResult> PgBackRestAgeAsync(BoundBackups bound, IHostSession session, DesiredBackup b, TimeSpan maxAge, CancellationToken cancellationToken)
    {
        var id = $"backup:{b.Name}";
        if (session.Facts.One(HostFacts.PgBackRest) is not { } fact)
        {
            return new CheckResult(id, CheckStatus.Fail, $"backup {b.Name} uses pgbackrest and the manifest declares no spec.pgbackrest");
        }
        var job = BoundBackups.JobFor(session.Server.DataDirectory.Length > 0 ? session.Server.DataDirectory : bound.Host.DataDirectory?.Value);
        PgBackRestInfo info;
        try
        {
            info = await new PgBackRestCli(fact.ConfigPath, fact.Stanza, job.User, session.Processes).InfoAsync(TimeSpan.FromMinutes(2), cancellationToken);
        }
        catch (PgStateException e)
        {
            return new CheckResult(id, CheckStatus.Fail, $"backup {b.Name}: {e.Message}");
        }
        if (info.Newest(b.PgBackRestType) is not { } newest)
        {
            return new CheckResult(id, CheckStatus.Fail, $"stanza {fact.Stanza} holds no {b.PgBackRestType} backup (pgbackrest info)");
        }
        var age = DateTime.UtcNow - newest.StoppedUtc;
        var hours = age.TotalHours.ToString("0.#", CultureInfo.InvariantCulture);
        var metrics = new Dictionary<string, double> { ["backup_age_seconds"] = age.TotalSeconds };
        return age > maxAge
            ? new CheckResult(id, CheckStatus.Fail, $"the newest {b.PgBackRestType} backup of stanza {fact.Stanza} ({newest.Label}) is {hours} h old; the schedule \"{b.Schedule}\" allows {maxAge.TotalHours:0.#} h", $"{hours} h") { Metrics = metrics }
            : new CheckResult(id, CheckStatus.Ok, $"newest {b.PgBackRestType} backup of stanza {fact.Stanza} ({newest.Label}) is {hours} h old", $"{hours} h") { Metrics = metrics };
    }

    /// <summary>1.5 × the longest gap between the schedule's next elapses (a weekday schedule's weekend included) plus an hour.</summary>
    internal static Task<TimeSpan> AllowedAgeAsync(IHostSession session, string schedule, CancellationToken ct)
    {
        var gap = PgState.Engine.Calendar.CalendarSpec.TryParse(schedule, out var spec, out _)
            ? spec.LongestInterval(DateTimeOffset.UtcNow, 8) ?? TimeSpan.FromDays(1)
            : TimeSpan.FromDays(1);
        return Task.FromResult(gap * 1.5 + TimeSpan.FromHours(1));
    }
}
