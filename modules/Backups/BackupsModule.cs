using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Backups;

public sealed record DesiredBackup(
    string Name, string Schedule, string Destination, string Format, string Compression, string Checkpoint, string ManifestChecksums,
    string? User, SecretReference? Password, int? RetentionCount, TimeSpan? RetentionMaxAge, bool Verify, string Scheduler,
    SourcePosition? SchedulePosition);

public sealed record BackupScheduling(string UnitDirectory, string CronDirectory, string PgstatePath, string ManifestPath);

/// <summary>A schedule file to write (content) or remove (null).</summary>
public sealed record UnitWrite(string Path, string? Content, string? TimerToEnable);

/// <summary>spec.backups: schedules as systemd units (or cron files) that run `pgstate backup run NAME`.</summary>
public sealed partial class BackupsModule : IModule
{
    public string Name => BackupUnits.Module;

    public int Order => 70;

    public IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics)
    {
        var spec = host.Document.Spec;
        if (spec["backups"] is not JArray list)
        {
            return null;
        }
        var backups = new List<DesiredBackup>();
        foreach (var node in list)
        {
            var b = (JObject)node;
            var name = (string)b["name"]!;
            if (backups.Any(x => x.Name == name))
            {
                diagnostics.Error("PGS501", $"backup {name} is listed twice", b.PositionOf());
                continue;
            }
            var format = (string?)b["format"] ?? "plain";
            var compression = (string?)b["compression"] ?? "none";
            if (format == "plain" && compression != "none")
            {
                diagnostics.Error("PGS502", $"backup {name}: compression needs format: tar (a plain backup is a data directory)", b["compression"].PositionOf());
            }
            var schedule = (string)b["schedule"]!;
            var scheduler = (string?)b["scheduler"] ?? "systemd";
            if (scheduler == "cron" && BackupUnits.ToCron(schedule) is null)
            {
                diagnostics.Error("PGS503", $"backup {name}: scheduler cron understands daily (\"*-*-* HH:MM:SS\") and weekly (\"Mon *-*-* HH:MM\") schedules; use systemd for \"{schedule}\"", b["schedule"].PositionOf());
            }
            var retention = b["retention"] as JObject;
            backups.Add(new DesiredBackup(name, schedule, ((string)b["destination"]!).TrimEnd('/'), format, compression,
                (string?)b["checkpoint"] ?? "fast", (string?)b["manifestChecksums"] ?? "CRC32C",
                (string?)b["connection"]?["user"], SecretReference.From(b["connection"]?["password"]),
                (int?)retention?["count"], (string?)retention?["maxAge"] is { } age ? Durations.Parse(age) : null,
                (bool?)b["verify"] ?? true, scheduler, b["schedule"].PositionOf()));
        }
        var s = spec["backupScheduling"] as JObject;
        var scheduling = new BackupScheduling(
            (string?)s?["unitDirectory"] ?? "/etc/systemd/system",
            (string?)s?["cronDirectory"] ?? "/etc/cron.d",
            (string?)s?["pgstatePath"] ?? "/usr/local/bin/pgstate",
            (string?)s?["manifestPath"] ?? Path.GetFullPath(host.Document.File));
        return new BoundBackups(host, backups, scheduling);
    }

    /// <summary>Every backup the host's manifest declares.</summary>
    public static IReadOnlyList<DesiredBackup> All(HostManifest host, DiagnosticBag diagnostics) =>
        (new BackupsModule().Bind(host, diagnostics) as BoundBackups)?.Backups ?? [];

    public static DesiredBackup? Find(HostManifest host, string name, DiagnosticBag diagnostics) =>
        All(host, diagnostics).FirstOrDefault(b => b.Name == name);
}

/// <summary>Renders and diffs the schedule files: the unit files are compared as rendered text.</summary>
public static partial class BackupUnits
{
    public const string Module = "backups";

    public static Dictionary<string, string> Render(string host, DesiredBackup b, BackupScheduling s)
    {
        var model = new Dictionary<string, object?>
        {
            ["host"] = host, ["name"] = b.Name, ["schedule"] = b.Schedule, ["pgstate"] = s.PgstatePath,
            ["manifest"] = s.ManifestPath, ["cron"] = ToCron(b.Schedule),
        };
        var assembly = typeof(BackupUnits).Assembly;
        return b.Scheduler == "cron"
            ? new() { [Path.Combine(s.CronDirectory, $"pgstate-backup-{b.Name}")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.cron.sbn", model) }
            : new()
            {
                [Path.Combine(s.UnitDirectory, $"pgstate-backup-{b.Name}.service")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.service.sbn", model),
                [Path.Combine(s.UnitDirectory, $"pgstate-backup-{b.Name}.timer")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.timer.sbn", model),
            };
    }

    /// <summary>Daily "*-*-* HH:MM[:SS]" or weekly "Dow *-*-* HH:MM[:SS]" as a cron line's time fields.</summary>
    public static string? ToCron(string schedule)
    {
        var m = CronLike().Match(schedule.Trim());
        if (!m.Success)
        {
            return null;
        }
        var day = m.Groups["dow"].Success ? m.Groups["dow"].Value[..3].ToLowerInvariant() : "*";
        return $"{int.Parse(m.Groups["m"].Value, System.Globalization.CultureInfo.InvariantCulture)} {int.Parse(m.Groups["h"].Value, System.Globalization.CultureInfo.InvariantCulture)} * * {day}";
    }

    [GeneratedRegex(@"^(?:(?<dow>Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\s+)?\*-\*-\*\s+(?<h>[01]?\d|2[0-3]):(?<m>[0-5]\d)(?::00)?$")]
    private static partial Regex CronLike();

    public static ModuleDiff Diff(IReadOnlyDictionary<string, string> desired, IReadOnlyDictionary<string, string> existing, bool systemdRunning)
    {
        var changes = new List<ResourceChange>();
        string Address(string path) => $"backups.{Path.GetFileName(path).Replace("pgstate-backup-", "", StringComparison.Ordinal)}";
        string? Timer(string path) => path.EndsWith(".timer", StringComparison.Ordinal) && systemdRunning ? Path.GetFileName(path) : null;
        foreach (var (path, content) in desired.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!existing.TryGetValue(path, out var current))
            {
                changes.Add(new ResourceChange(Address(path), Module, ChangeAction.Create, null, path, Activation.None) { Payload = new UnitWrite(path, content, Timer(path)) });
            }
            else if (current != content)
            {
                var line = FirstDifference(current, content);
                changes.Add(new ResourceChange(Address(path), Module, ChangeAction.Update, line.Before, line.After, Activation.None, $"{path} differs from the rendered unit")
                { Payload = new UnitWrite(path, content, Timer(path)) });
            }
        }
        foreach (var path in existing.Keys.Where(p => !desired.ContainsKey(p)).Order(StringComparer.Ordinal))
        {
            changes.Add(new ResourceChange(Address(path), Module, ChangeAction.Delete, path, null, Activation.None, "schedule no longer in the manifest")
            { Payload = new UnitWrite(path, null, Timer(path)) });
        }
        var warnings = new List<PlanWarning>();
        if (!systemdRunning && desired.Keys.Any(k => k.EndsWith(".timer", StringComparison.Ordinal)))
        {
            warnings.Add(new PlanWarning(null, Module, "systemd is not PID 1 here: timers are written but not active (no systemctl enable --now)"));
        }
        var digest = string.Join(';', existing.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}:{e.Value.GetHashCode(StringComparison.Ordinal)}"));
        return new ModuleDiff(changes, [], warnings, digest);
    }

    private static (string Before, string After) FirstDifference(string a, string b)
    {
        var x = a.Split('\n');
        var y = b.Split('\n');
        for (var i = 0; i < Math.Max(x.Length, y.Length); i++)
        {
            var l = i < x.Length ? x[i] : "";
            var r = i < y.Length ? y[i] : "";
            if (l != r)
            {
                return ($"line {i + 1}: {l}", $"line {i + 1}: {r}");
            }
        }
        return ("", "");
    }
}

internal sealed class BoundBackups(HostManifest host, IReadOnlyList<DesiredBackup> backups, BackupScheduling scheduling) : IBoundModule
{
    public string Name => BackupUnits.Module;

    public IReadOnlyList<DesiredBackup> Backups => backups;

    public static bool SystemdRunning => Directory.Exists("/run/systemd/system");

    public async Task ValidateLiveAsync(IHostSession session, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        foreach (var b in backups)
        {
            var result = await session.Processes.RunAsync("systemd-analyze", ["calendar", b.Schedule], check: false, cancellationToken: cancellationToken);
            if (result.ExitCode != 0)
            {
                diagnostics.Error("PGS504", $"backup {b.Name}: schedule \"{b.Schedule}\" is not a valid systemd OnCalendar expression ({result.StandardError.Trim()})", b.SchedulePosition);
            }
        }
    }

    public Task<ModuleDiff> PlanAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var desired = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var b in backups)
        {
            foreach (var (path, content) in BackupUnits.Render(host.Name, b, scheduling))
            {
                desired[path] = content;
            }
        }
        var existing = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var dir in new[] { scheduling.UnitDirectory, scheduling.CronDirectory }.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "pgstate-backup-*"))
            {
                existing[file] = File.ReadAllText(file);
            }
        }
        return Task.FromResult(BackupUnits.Diff(desired, existing, SystemdRunning));
    }

    public async Task<string?> ApplyAsync(IHostSession session, ResourceChange change, CancellationToken cancellationToken)
    {
        var write = (UnitWrite)change.Payload!;
        var p = session.Processes;
        if (write.Content is null)
        {
            if (write.TimerToEnable is { } gone)
            {
                await p.RunAsync("systemctl", ["disable", "--now", gone], check: false, cancellationToken: cancellationToken);
            }
            File.Delete(write.Path);
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(write.Path)!);
            var isNew = !File.Exists(write.Path);
            await HostFiles.ReplaceAsync(write.Path, write.Content, p, cancellationToken);
            if (isNew)
            {
                File.SetUnixFileMode(write.Path, (UnixFileMode)0b110_100_100);
            }
        }
        if (!SystemdRunning)
        {
            return write.Path.EndsWith(".timer", StringComparison.Ordinal) ? $"{write.Path} written; not active (systemd is not PID 1)" : null;
        }
        await p.RunAsync("systemctl", ["daemon-reload"], cancellationToken: cancellationToken);
        if (write.Content is not null && write.TimerToEnable is { } timer)
        {
            await p.RunAsync("systemctl", ["enable", "--now", timer], cancellationToken: cancellationToken);
            return $"{timer} enabled and started";
        }
        return null;
    }
}
