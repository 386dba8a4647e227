using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Rendering;

namespace PgState.Modules.Backups;

public sealed record DrillProbeResult(string Name, string? Value, bool Passed, string Message);

/// <summary>What one drill (or restore) did and found; the status file holds the last one, the check reads it.</summary>
public sealed record DrillReport
{
    public int FormatVersion { get; init; } = 1;

    public required string Name { get; init; }

    public required string Host { get; init; }

    /// <summary>drill, or restore (the real thing, into a directory the operator named).</summary>
    public required string Kind { get; init; }

    public required DateTime StartedUtc { get; init; }

    public DateTime? EndedUtc { get; init; }

    public required string Target { get; init; }

    /// <summary>The moment recovery was asked to stop at (for latest: the start of the run, which RPO is measured against).</summary>
    public DateTime? TargetUtc { get; init; }

    public string? Backup { get; init; }

    public DateTime? BackupStartedUtc { get; init; }

    public DateTime? BackupEndedUtc { get; init; }

    public long BackupBytes { get; init; }

    public string? Verification { get; init; }

    public string? Directory { get; init; }

    public bool Kept { get; init; }

    public string? RestoreCommand { get; init; }

    public long SegmentsFromArchive { get; init; }

    public string? FirstSegment { get; init; }

    public string? LastSegment { get; init; }

    public string? BackupStartLsn { get; init; }

    public string? RecoveryEndLsn { get; init; }

    /// <summary>WAL replayed: recovery's end minus the backup's start, in bytes.</summary>
    public long WalBytes { get; init; }

    public DateTime? LastTransactionUtc { get; init; }

    public string? StoppedAt { get; init; }

    public string? Timeline { get; init; }

    public double? CopySeconds { get; init; }

    public double? ReplaySeconds { get; init; }

    public double? ReplayMegabytesPerSecond { get; init; }

    public double? RpoSeconds { get; init; }

    public double? RtoSeconds { get; init; }

    public double? MaxRpoSeconds { get; init; }

    public double? MaxRtoSeconds { get; init; }

    public IReadOnlyList<DrillProbeResult> Probes { get; init; } = [];

    public bool Passed { get; init; }

    /// <summary>Why it failed, one entry per reason (the restore's error, a probe, a limit).</summary>
    public IReadOnlyList<string> Failures { get; init; } = [];

    /// <summary>The end of the last drill that passed (this one or an earlier one), for the check's "last success" metric.</summary>
    public DateTime? LastSuccessUtc { get; init; }
}

[JsonSerializable(typeof(DrillReport))]
internal sealed partial class DrillJson : JsonSerializerContext
{
    /// <summary>Indented, camelCase, and "+00" written as such (the default encoder escapes + and non-ASCII).</summary>
    public static DrillJson Relaxed { get; } = new(new JsonSerializerOptions
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>The drill's status file (DEST/.pgstate-drill-NAME.json) and its renderings.</summary>
public static class DrillReports
{
    public static string StatusFile(DesiredBackup backup) => Path.Combine(backup.Destination, $".pgstate-drill-{backup.Name}.json");

    public static string Json(DrillReport report) => JsonSerializer.Serialize(report, DrillJson.Relaxed.DrillReport) + "\n";

    // Probe values are the database's data: readable by the job's user (and root) only.
    public static Task WriteStatusAsync(DesiredBackup backup, DrillReport report, CancellationToken cancellationToken) =>
        HostFiles.WriteAtomicAsync(StatusFile(backup), Json(report), cancellationToken, UnixFileMode.UserRead | UnixFileMode.UserWrite);

    /// <summary>The last drill's report; null when none ran; a clean error when it cannot be read.</summary>
    public static DrillReport? ReadStatus(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(HostFiles.ReadBoundedText(path, 4 << 20, followLinks: false), DrillJson.Relaxed.DrillReport) ?? throw new PgStateException($"{path} is empty");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new PgStateException($"cannot read {path}: {e.Message}");
        }
    }

    public static string Seconds(double? s) => s switch
    {
        null => "-",
        < 60 => s.Value.ToString("0.0", CultureInfo.InvariantCulture) + " s",
        < 3600 => (s.Value / 60).ToString("0.0", CultureInfo.InvariantCulture) + " min",
        _ => (s.Value / 3600).ToString("0.00", CultureInfo.InvariantCulture) + " h",
    };

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB";

    private static string Time(DateTime? t) => t is { } v ? v.ToString("yyyy-MM-dd HH:mm:ss.fff'+00'", CultureInfo.InvariantCulture) : "-";

    private static string Limit(double? value, double? max) =>
        max is { } m ? $" (max {Seconds(m)}: {(value is { } v && v <= m ? "ok" : "exceeded")})" : "";

    /// <summary>The rows of the report, shared by the text and markdown forms.</summary>
    private static List<(string Label, string Value)> Rows(DrillReport r)
    {
        var rows = new List<(string, string)>
        {
            ("backup", r.Backup is null ? "-" : $"{r.Backup} ({Mb(r.BackupBytes)}; {r.Verification ?? "not verified"})"),
            ("target", r.Target == "latest" ? $"latest: the end of the archive (RPO measured against the start, {Time(r.TargetUtc)})" : $"{r.Target} ({Time(r.TargetUtc)})"),
            ("restored into", r.Directory is null ? "-" : r.Directory + (r.Kind == "drill" ? (r.Kept ? " (kept)" : " (removed)") : "")),
            ("WAL replayed", r.SegmentsFromArchive == 0 ? $"{Mb(r.WalBytes)}, no segment from the archive"
                : $"{r.SegmentsFromArchive} segment(s) from the archive ({r.FirstSegment} … {r.LastSegment}), {Mb(r.WalBytes)}"
                  + (r.ReplayMegabytesPerSecond is { } rate ? $", {rate.ToString("0.0", CultureInfo.InvariantCulture)} MB/s" : "")),
            ("recovery end", $"LSN {r.RecoveryEndLsn ?? "-"}, last transaction {Time(r.LastTransactionUtc)}" + (r.Timeline is { } tl ? $", new timeline {tl}" : "")),
        };
        if (r.StoppedAt is { } stopped)
        {
            rows.Add(("stopped", stopped));
        }
        rows.Add(("RPO", Seconds(r.RpoSeconds) + Limit(r.RpoSeconds, r.MaxRpoSeconds)));
        rows.Add(("RTO", Seconds(r.RtoSeconds) + Limit(r.RtoSeconds, r.MaxRtoSeconds)
            + (r.CopySeconds is not null || r.ReplaySeconds is not null ? $"; copy {Seconds(r.CopySeconds)}, start and replay {Seconds(r.ReplaySeconds)}" : "")));
        foreach (var p in r.Probes)
        {
            rows.Add(($"probe {p.Name}", $"{p.Value ?? "NULL"}: {(p.Passed ? "ok" : p.Message)}"));
        }
        return rows;
    }

    public static string Text(DrillReport r)
    {
        var sb = new StringBuilder();
        sb.Append(r.Kind == "drill" ? "Restore drill" : "Restore").Append(" of backup ").Append(r.Name).Append(" (host ").Append(r.Host).Append("): ")
            .Append(r.Kind == "drill" ? (r.Passed ? "PASSED" : "FAILED") : (r.Passed ? "done" : "FAILED")).Append('\n');
        foreach (var (label, value) in Rows(r))
        {
            // A label longer than the column (a probe's name) still gets a space before its value.
            sb.Append("  ").Append(label.PadRight(13)).Append(' ').Append(SafeText.Text(value)).Append('\n');
        }
        foreach (var f in r.Failures)
        {
            sb.Append("  FAILED: ").Append(string.Join("\n  ", f.Split('\n').Select(SafeText.Text))).Append('\n');
        }
        return sb.ToString();
    }

    public static string Markdown(DrillReport r)
    {
        static string Cell(string s) => SafeText.Markdown(s);
        var sb = new StringBuilder();
        sb.Append("### ").Append(r.Kind == "drill" ? "Restore drill" : "Restore").Append(" of `").Append(r.Name).Append("` on `").Append(r.Host).Append("`: **")
            .Append(r.Passed ? "passed" : "failed").Append("**\n\n| | |\n|---|---|\n");
        foreach (var (label, value) in Rows(r))
        {
            sb.Append("| ").Append(Cell(label)).Append(" | ").Append(Cell(value)).Append(" |\n");
        }
        if (r.Failures.Count > 0)
        {
            sb.Append('\n');
            foreach (var f in r.Failures)
            {
                sb.Append("> [!CAUTION]\n> ").Append(string.Join("\n> ", f.Split('\n').Select(SafeText.Markdown))).Append('\n');
            }
        }
        return sb.ToString();
    }
}
