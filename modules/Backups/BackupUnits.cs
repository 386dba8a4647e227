using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Backups;

/// <summary>A schedule file (or a credential) to write, or to remove when Content is null.</summary>
public sealed record UnitWrite(string Path, byte[]? Content, string? TimerToEnable, UnixFileMode Mode, string? Owner = null);

/// <summary>Who a scheduled job runs as and with what: rendered into units and cron lines.</summary>
public sealed record JobIdentity(string User, string Group);

/// <summary>A file pgstate wrote for this host, as found on disk.</summary>
public sealed record ScheduleFile(string Path, byte[] Content);

/// <summary>
/// Renders and diffs the schedule files. Names carry the host (pgstate-backup-HOST-NAME.*); the first
/// line of each says which host wrote it, and pgstate only changes or removes files whose first line
/// names this host. Values written into a unit or a cron line are quoted for that file's own parser.
/// </summary>
public static partial class BackupUnits
{
    public const string Module = "backups";

    public static string Header(string host) => $"# Written by pgstate for host {host}";

    /// <summary>True when a file's first line says pgstate wrote it for this host.</summary>
    public static bool WrittenFor(byte[] content, string host)
    {
        var header = Encoding.UTF8.GetBytes(Header(host));
        return content.AsSpan().StartsWith(header) && content.Length > header.Length && content[header.Length] is (byte)':' or (byte)' ' or (byte)'\n';
    }

    public static string UnitBase(string host, string name) => $"pgstate-backup-{host}-{name}";

    /// <summary>The restore drill of a backup has its own schedule files: pgstate-drill-HOST-NAME.*.</summary>
    public static string DrillBase(string host, string name) => $"pgstate-drill-{host}-{name}";

    /// <summary>File name prefixes of every schedule file pgstate writes (backups and drills).</summary>
    public static readonly IReadOnlyList<string> FilePatterns = ["pgstate-backup-*", "pgstate-drill-*"];

    /// <summary>Debian's cron ignores file names with dots; a host name's dots become underscores.</summary>
    public static string CronName(string host, string name) => UnitBase(host, name).Replace('.', '_');

    /// <summary>One argument of an ExecStart= line: quoted, with systemd's specifier (%) and variable ($) characters doubled.</summary>
    public static string SystemdArgument(string value)
    {
        var escaped = value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("%", "%%", StringComparison.Ordinal).Replace("$", "$$", StringComparison.Ordinal);
        return escaped.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+=:@,".Contains(c)) ? escaped : "\"" + escaped + "\"";
    }

    /// <summary>One word of a cron command (run by /bin/sh): single-quoted, and % escaped (cron turns it into a newline).</summary>
    public static string CronArgument(string value)
    {
        var quoted = value.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+=:@,".Contains(c)) ? value : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
        return quoted.Replace("%", "\\%", StringComparison.Ordinal);
    }

    /// <summary>The job's command line. --host: a manifest may declare several hosts, each with a backup of the same name.</summary>
    public static IReadOnlyList<string> RunArguments(string host, DesiredBackup backup, BackupScheduling scheduling, string? credentialsDirectory) =>
        [scheduling.PgstatePath, "backup", "run", backup.Name, "--manifest", scheduling.ManifestPath, "--host", host,
         .. credentialsDirectory is null ? Array.Empty<string>() : ["--credentials-directory", credentialsDirectory]];

    /// <summary>The drill never connects to production (only to its own server, over a private socket): it needs no credentials.</summary>
    public static IReadOnlyList<string> DrillArguments(DesiredBackup backup, BackupScheduling scheduling) =>
        [scheduling.PgstatePath, "restore", "drill", backup.Name, "--manifest", scheduling.ManifestPath];

    /// <summary>The files a backup's drill schedule needs (none when the backup declares no scheduled drill).</summary>
    public static Dictionary<string, string> RenderDrill(string host, DesiredBackup b, BackupScheduling s, JobIdentity job)
    {
        if (b.Drill is not { Schedule: { } schedule })
        {
            return [];
        }
        var assembly = typeof(BackupUnits).Assembly;
        var model = new TemplateModel()
            .Set("header", Header(host))
            .Set("host", host).Set("name", b.Name).Set("schedule", schedule).Set("manifest", s.ManifestPath)
            .Set("user", job.User).Set("group", job.Group);
        if (b.Scheduler == "cron")
        {
            model.Set("cron", ToCron(schedule)).Set("command", string.Join(' ', DrillArguments(b, s).Select(CronArgument)));
            return new() { [Path.Combine(s.CronDirectory, DrillBase(host, b.Name).Replace('.', '_'))] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.drill.cron.sbn", model) };
        }
        model.Set("exec", string.Join(' ', DrillArguments(b, s).Select(SystemdArgument)));
        return new()
        {
            [Path.Combine(s.UnitDirectory, DrillBase(host, b.Name) + ".service")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.drill.service.sbn", model),
            [Path.Combine(s.UnitDirectory, DrillBase(host, b.Name) + ".timer")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.drill.timer.sbn", model),
        };
    }

    /// <summary>The files one backup's schedule needs, with their content.</summary>
    public static Dictionary<string, string> Render(string host, DesiredBackup b, BackupScheduling s, JobIdentity job, IReadOnlyList<(string Name, string Path)> credentials, string hostCredentials)
    {
        var assembly = typeof(BackupUnits).Assembly;
        var model = new TemplateModel()
            .Set("header", Header(host))
            .Set("host", host).Set("name", b.Name).Set("schedule", b.Schedule).Set("manifest", s.ManifestPath)
            .Set("user", job.User).Set("group", job.Group)
            .Set("credentials", credentials.Select(c => new TemplateModel().Set("name", c.Name).Set("path", c.Path.Replace("%", "%%", StringComparison.Ordinal))));
        if (b.Scheduler == "cron")
        {
            var words = RunArguments(host, b, s, credentials.Count > 0 ? hostCredentials : null);
            model.Set("cron", ToCron(b.Schedule)).Set("command", string.Join(' ', words.Select(CronArgument)));
            return new() { [Path.Combine(s.CronDirectory, CronName(host, b.Name))] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.cron.sbn", model) };
        }
        model.Set("exec", string.Join(' ', RunArguments(host, b, s, null).Select(SystemdArgument)));
        return new()
        {
            [Path.Combine(s.UnitDirectory, UnitBase(host, b.Name) + ".service")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.service.sbn", model),
            [Path.Combine(s.UnitDirectory, UnitBase(host, b.Name) + ".timer")] = TemplateRenderer.Render(assembly, "PgState.Modules.Backups.backup.timer.sbn", model),
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

    [GeneratedRegex(@"^(?:(?<dow>Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\s+)?\*-\*-\*\s+(?<h>[01]?\d|2[0-3]):(?<m>[0-5]\d)(?::00)?\z")]
    private static partial Regex CronLike();

    /// <summary>The address of a schedule file in plans: backups.NAME.service / .timer / .cron, backups.NAME.drill.service / .timer / .cron.</summary>
    public static string Address(string host, string path)
    {
        var file = System.IO.Path.GetFileName(path);
        foreach (var prefix in new[] { DrillBase(host, ""), DrillBase(host, "").Replace('.', '_'), "pgstate-drill-" })
        {
            if (file.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = file[prefix.Length..];
                foreach (var suffix in new[] { ".service", ".timer" })
                {
                    if (rest.EndsWith(suffix, StringComparison.Ordinal))
                    {
                        return "backups." + rest[..^suffix.Length] + ".drill" + suffix;
                    }
                }
                return "backups." + rest + ".drill.cron";
            }
        }
        foreach (var prefix in new[] { UnitBase(host, ""), UnitBase(host, "").Replace('.', '_'), "pgstate-backup-" })
        {
            if (file.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = file[prefix.Length..];
                return "backups." + (rest.EndsWith(".service", StringComparison.Ordinal) || rest.EndsWith(".timer", StringComparison.Ordinal) ? rest : rest + ".cron");
            }
        }
        return "backups." + file;
    }

    public static void Diff(string host, IReadOnlyDictionary<string, string> desired, IReadOnlyList<ScheduleFile> existing, IReadOnlyList<string> foreign,
        bool systemdRunning, Diff<UnitWrite> diff)
    {
        string? Timer(string path) => path.EndsWith(".timer", StringComparison.Ordinal) && systemdRunning ? System.IO.Path.GetFileName(path) : null;
        var mine = existing.ToDictionary(e => e.Path, StringComparer.Ordinal);
        foreach (var (path, content) in desired.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var bytes = Encoding.UTF8.GetBytes(content);
            if (foreign.Contains(path))
            {
                diff.Warn(Address(host, path), $"{path} exists and was not written by pgstate for host {host}: pgstate leaves it alone, so this schedule cannot be written until it is moved away");
                continue;
            }
            if (!mine.TryGetValue(path, out var current))
            {
                diff.Add(Address(host, path), ChangeAction.Create, null, path, Activation.None, new UnitWrite(path, bytes, Timer(path), (UnixFileMode)0b110_100_100));
            }
            else if (!current.Content.AsSpan().SequenceEqual(bytes))
            {
                var line = FirstDifference(Encoding.UTF8.GetString(current.Content), content);
                diff.Add(Address(host, path), ChangeAction.Update, line.Before, line.After, Activation.None, new UnitWrite(path, bytes, Timer(path), (UnixFileMode)0b110_100_100),
                    $"{path} differs from the rendered file");
            }
        }
        foreach (var e in existing.Where(e => !desired.ContainsKey(e.Path)).OrderBy(e => e.Path, StringComparer.Ordinal))
        {
            diff.Add(Address(host, e.Path), ChangeAction.Delete, e.Path, null, Activation.None, new UnitWrite(e.Path, null, Timer(e.Path), 0), "schedule no longer in the manifest");
        }
        if (!systemdRunning && desired.Keys.Any(k => k.EndsWith(".timer", StringComparison.Ordinal)))
        {
            diff.Warn(null, "systemd is not PID 1 here: timers are written but not active (no systemctl enable --now)");
        }
    }

    public static string Digest(IReadOnlyList<ScheduleFile> existing) =>
        string.Join(';', existing.OrderBy(e => e.Path, StringComparer.Ordinal).Select(e => $"{e.Path}:{Convert.ToHexStringLower(SHA256.HashData(e.Content))}"));

    private static (string Before, string After) FirstDifference(string a, string b) => TextSafety.FirstDifferingLine(a, b) ?? ("", "");
}
