using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>
/// pgstate import for spec.backups: the schedules pgstate wrote for this host (the first line of
/// each unit or cron file names the host and the manifest the job runs with). A unit holds the
/// name, schedule and manifest path; the rest of a backup (destination, retention …) is in that
/// manifest, so its entry is read from there, as written. Schedules of other hosts are a note.
/// </summary>
public sealed partial class BackupsModule : IImportingModule
{
    public IReadOnlyList<string> ImportSections => ["backups"];

    public int ImportOrder => 50;

    private sealed record FoundSchedule(string Host, string Name, string Manifest, string Path, string Content);

    private static List<FoundSchedule> Scan(HostPaths paths)
    {
        var found = new List<FoundSchedule>();
        foreach (var dir in new[] { paths.UnitDirectory, paths.CronDirectory }.Distinct().Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "pgstate-backup-*").Order(StringComparer.Ordinal))
            {
                if (Posix.Stat(file, followLinks: false) is not { Kind: PosixFileKind.Regular, Size: < 1024 * 1024 })
                {
                    continue;
                }
                string content;
                try
                {
                    content = File.ReadAllText(file, Encoding.UTF8);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                if (ScheduleHeader().Match(content) is { Success: true } m)
                {
                    found.Add(new FoundSchedule(m.Groups["host"].Value, m.Groups["name"].Value, m.Groups["manifest"].Value, file, content));
                }
            }
        }
        return found;
    }

    public IReadOnlyList<string> HostNameHints(IHostSession session) =>
        Scan(session.Paths).Select(f => f.Host).Distinct().ToList() is { Count: 1 } hosts ? hosts : [];

    public Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken)
    {
        if (!context.Wants("backups"))
        {
            return Task.FromResult<IReadOnlyList<ImportedField>>([]);
        }
        var session = context.Session;
        var found = Scan(session.Paths);
        foreach (var other in found.Where(f => f.Host != context.HostName).GroupBy(f => f.Host))
        {
            context.Note($"backups: {other.Count()} schedule file(s) in {string.Join(", ", other.Select(f => Path.GetDirectoryName(f.Path)).Distinct())} were written for host {other.Key}, not {context.HostName}: not imported (--name {other.Key} imports them)");
        }
        var mine = found.Where(f => f.Host == context.HostName).GroupBy(f => f.Name).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        var items = new List<YamlOutItem>();
        var manifests = new Dictionary<string, HostManifest?>(StringComparer.Ordinal);
        string? pgstatePath = null;
        string? manifestPath = null;
        foreach (var schedule in mine)
        {
            var name = schedule.Key;
            var first = schedule.First();
            manifestPath ??= first.Manifest;
            var scheduler = schedule.Any(f => f.Path.EndsWith(".timer", StringComparison.Ordinal) || f.Path.EndsWith(".service", StringComparison.Ordinal)) ? "systemd" : "cron";
            var timer = schedule.FirstOrDefault(f => f.Path.EndsWith(".timer", StringComparison.Ordinal));
            var when = timer is not null && OnCalendar().Match(timer.Content) is { Success: true } c ? c.Groups[1].Value
                : CronSchedule().Match(first.Content) is { Success: true } cs ? cs.Groups[1].Value : "?";
            if (schedule.FirstOrDefault(f => f.Path.EndsWith(".service", StringComparison.Ordinal)) is { } service && ExecStart().Match(service.Content) is { Success: true } exec)
            {
                pgstatePath ??= Unquote(exec.Groups[1].Value);
            }
            else if (scheduler == "cron" && CronCommand().Match(first.Content) is { Success: true } cron)
            {
                pgstatePath ??= cron.Groups[1].Value.Trim('\'');
            }
            if (!manifests.TryGetValue(first.Manifest, out var host))
            {
                host = manifests[first.Manifest] = LoadManifest(context, first.Manifest);
            }
            var entry = host?.Spec.Mappings("backups").FirstOrDefault(b => b.String("name") == name);
            if (entry is null)
            {
                context.Note(host is null
                    ? $"backups: {name} (scheduled \"{when}\", {scheduler}) runs with {first.Manifest}, which cannot be read here: copy its spec.backups entry by hand"
                    : $"backups: {name} (scheduled \"{when}\") is not in {first.Manifest} any more: not imported (apply removes its schedule files)");
                continue;
            }
            items.Add(new YamlOutItem(YamlOut.From(entry, flowBelow: 1)));
            if (entry.String("destination") is { } destination)
            {
                context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination($"backup destination of '{name}'", destination.Length > 1 ? destination.TrimEnd('/') : destination, null));
            }
        }
        var fields = new List<ImportedField>();
        if (items.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<ImportedField>>(fields);
        }
        var scheduling = new List<YamlOutEntry>();
        if (pgstatePath is not null && pgstatePath != DefaultPgstatePath)
        {
            scheduling.Add(new("pgstatePath", YamlOut.String(pgstatePath)));
        }
        if (manifestPath is not null && manifestPath != Path.Combine(session.Paths.ConfigDirectory, context.HostName + ".yaml"))
        {
            scheduling.Add(new("manifestPath", YamlOut.String(manifestPath)));
        }
        if (scheduling.Count > 0)
        {
            fields.Add(new ImportedField(75, new YamlOutEntry("backupScheduling", new YamlOutMapping(scheduling))));
        }
        fields.Add(new ImportedField(80, new YamlOutEntry("backups", new YamlOutSequence(items),
            Above: ["the schedules pgstate wrote for this host, as the manifest they run with declares them"])));
        return Task.FromResult<IReadOnlyList<ImportedField>>(fields);
    }

    private static HostManifest? LoadManifest(ImportContext context, string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var (hosts, error) = context.LoadManifest(path);
        if (error is not null)
        {
            context.Note($"backups: {path} does not load ({error})");
            return null;
        }
        return hosts.FirstOrDefault(h => h.Name == context.HostName) ?? (hosts.Count == 1 ? hosts[0] : null);
    }

    /// <summary>One ExecStart= word as BackupUnits.SystemdArgument wrote it.</summary>
    private static string Unquote(string word)
    {
        var text = word.Length >= 2 && word[0] == '"' && word[^1] == '"' ? word[1..^1].Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal) : word;
        return text.Replace("%%", "%", StringComparison.Ordinal).Replace("$$", "$", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^# Written by pgstate for host (?<host>\S+) from manifest (?<manifest>/.*?): (?:schedule of )?base backup ""(?<name>[a-z0-9][a-z0-9_-]*)""")]
    private static partial Regex ScheduleHeader();

    [GeneratedRegex(@"^OnCalendar=(.*)$", RegexOptions.Multiline)]
    private static partial Regex OnCalendar();

    [GeneratedRegex(@"^ExecStart=(""(?:[^""\\]|\\.)*""|\S+)", RegexOptions.Multiline)]
    private static partial Regex ExecStart();

    [GeneratedRegex(@"base backup ""[^""]+"" \((.*)\)\.\s*$", RegexOptions.Multiline)]
    private static partial Regex CronSchedule();

    [GeneratedRegex(@"^[0-9*,/-]+ [0-9*,/-]+ \* \* \S+ \S+ (\S+)", RegexOptions.Multiline)]
    private static partial Regex CronCommand();
}
