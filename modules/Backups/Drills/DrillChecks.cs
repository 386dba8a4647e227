using System.Globalization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>
/// restore-drill:NAME — from the status file the drill writes: fails when the last drill failed
/// (restore, probe, maxRpo, maxRto), or when it is older than its schedule allows (1.5 × its period
/// plus an hour). Metrics: RPO, RTO, replay rate, when the last drill passed.
/// </summary>
internal static class DrillChecks
{
    public static async Task<IReadOnlyList<CheckResult>> CheckAsync(BoundBackups bound, IHostSession session, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var b in bound.Backups.Where(b => b.Drill is not null))
        {
            var drill = b.Drill!;
            var id = $"restore-drill:{b.Name}";
            DrillReport? report;
            try
            {
                report = DrillReports.ReadStatus(DrillReports.StatusFile(b));
            }
            catch (PgStateException e)
            {
                results.Add(new CheckResult(id, CheckStatus.Fail, $"the status of the drill of {b.Name} cannot be read: {e.Message}"));
                continue;
            }
            if (report is null)
            {
                results.Add(new CheckResult(id, CheckStatus.Warn, $"no restore drill of {b.Name} recorded in {b.Destination} yet (pgstate restore drill {b.Name} runs one)"));
                continue;
            }
            var metrics = Metrics(report);
            var ended = report.EndedUtc ?? report.StartedUtc;
            var age = DateTime.UtcNow - ended;
            var hours = age.TotalHours.ToString("0.#", CultureInfo.InvariantCulture);
            if (!report.Passed)
            {
                results.Add(new CheckResult(id, CheckStatus.Fail,
                    $"the last restore drill of {b.Name} ({RestorableBackups.Stamp(report.StartedUtc)}) failed: {string.Join("; ", report.Failures.Select(f => f.Split('\n')[0]))}", $"{hours} h")
                    { Metrics = metrics });
                continue;
            }
            if (drill.Schedule is { } schedule && await BackupChecks.AllowedAgeAsync(session, schedule, cancellationToken) is var allowed && age > allowed)
            {
                results.Add(new CheckResult(id, CheckStatus.Fail,
                    $"the last restore drill of {b.Name} is {hours} h old; its schedule \"{schedule}\" allows {allowed.TotalHours:0.#} h", $"{hours} h") { Metrics = metrics });
                continue;
            }
            results.Add(new CheckResult(id, CheckStatus.Ok,
                $"restore drill of {b.Name} passed {hours} h ago: RPO {DrillReports.Seconds(report.RpoSeconds)}, RTO {DrillReports.Seconds(report.RtoSeconds)}, {report.Probes.Count} probe(s)",
                $"{hours} h") { Metrics = metrics });
        }
        return results;
    }

    private static Dictionary<string, double> Metrics(DrillReport report)
    {
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["drill_passed"] = report.Passed ? 1 : 0,
            ["drill_timestamp_seconds"] = new DateTimeOffset(report.EndedUtc ?? report.StartedUtc, TimeSpan.Zero).ToUnixTimeSeconds(),
        };
        if (report.LastSuccessUtc is { } success)
        {
            metrics["drill_last_success_timestamp_seconds"] = new DateTimeOffset(success, TimeSpan.Zero).ToUnixTimeSeconds();
        }
        if (report.RpoSeconds is { } rpo)
        {
            metrics["drill_rpo_seconds"] = rpo;
        }
        if (report.RtoSeconds is { } rto)
        {
            metrics["drill_rto_seconds"] = rto;
        }
        if (report.ReplayMegabytesPerSecond is { } rate)
        {
            metrics["drill_replay_megabytes_per_second"] = rate;
        }
        return metrics;
    }
}
