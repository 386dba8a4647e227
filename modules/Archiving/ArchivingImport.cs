using System.Text.RegularExpressions;
using Npgsql;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Archiving;

/// <summary>
/// pgstate import for spec.archiving and spec.settings: the archiving parameters (archive_command
/// read back into a method when it is exactly what pgstate writes) and every parameter set in
/// postgresql.auto.conf — or, with --all-settings, in any configuration file — in the units a person
/// writes (1GB, 5min). Values overridden on the command line or by a later file are notes, not fields.
/// </summary>
public sealed partial class ArchivingModule : IImportingModule
{
    private static readonly string[] ArchivingParameters = ["wal_level", "archive_mode", "archive_command", "archive_timeout"];

    /// <summary>Set in postgresql.conf, never by ALTER SYSTEM (GUC_DISALLOW_IN_AUTO_FILE).</summary>
    private static readonly string[] FileOnlyParameters = ["data_directory", "config_file", "hba_file", "ident_file"];

    public IReadOnlyList<string> ImportSections => ["archiving", "settings"];

    public int ImportOrder => 10;

    public IReadOnlyList<VerbParameter> ImportParameters =>
    [
        new VerbParameter("all-settings", "Import every parameter a configuration file sets (postgresql.conf and its includes too, not only postgresql.auto.conf), each with its file and line in a comment.",
            VerbParameterKind.Flag),
    ];

    public async Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken)
    {
        var session = context.Session;
        // Parameter names are case-insensitive: postgresql.conf writes datestyle, pg_settings says DateStyle.
        var live = new Dictionary<string, (ParameterInfo Info, LiveSetting Setting)>(StringComparer.OrdinalIgnoreCase);
        await using (var cmd = new NpgsqlCommand(BoundArchiving.SettingColumns, session.Connection))
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = BoundArchiving.ReadSetting(reader);
                live[row.Info.Name] = row;
            }
        }
        var files = new List<FileSetting>();
        if (session.Server.IsSuperuser)
        {
            await using var cmd = new NpgsqlCommand(BoundArchiving.FileSettingColumns + "order by seqno", session.Connection);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                files.Add(BoundArchiving.ReadFileSetting(reader));
            }
        }
        else
        {
            context.Note("settings: reading pg_file_settings needs superuser: parameters set in postgresql.auto.conf were not imported");
        }
        foreach (var bad in files.Where(f => f.Error is not null))
        {
            context.Note($"settings: {bad.Where} ({bad.Name}) is not applied by the server ({bad.Error}): not imported");
        }
        var byName = files.Where(f => f.Error is null).GroupBy(f => f.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.OrderBy(f => f.Seqno).ToList(), StringComparer.OrdinalIgnoreCase);
        var all = context.Flag("all-settings");
        var fields = new List<ImportedField>();

        var archivingEntries = context.Wants("archiving") ? ImportArchiving(context, live, byName) : [];
        var inArchiving = archivingEntries.Select(e => e.Parameter).ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (archivingEntries.Count > 0)
        {
            fields.Add(new ImportedField(10, new YamlOutEntry("archiving", new YamlOutMapping([.. archivingEntries.Select(e => e.Entry)]))));
        }

        foreach (var (name, (_, setting)) in live.Where(l => l.Value.Setting.Source is "command line" or "environment variable").OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            context.Note($"settings: {name} = {(SettingValues.Display(setting.Info, setting.Setting) is { Length: > 0 } shown ? shown : "''")} is set on the server's {setting.Source} (postgres -c, pg_ctl -o): ALTER SYSTEM cannot change it, not imported");
        }
        if (!context.Wants("settings"))
        {
            return fields;
        }
        var settings = new List<YamlOutEntry>();
        foreach (var (name, rows) in byName.OrderBy(g => g.Value[^1].Seqno))
        {
            var auto = rows.LastOrDefault(r => r.IsAutoConf);
            var winning = rows[^1];
            if (inArchiving.Contains(name) || (!all && auto is null))
            {
                continue;
            }
            if (FileOnlyParameters.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                context.Note($"settings: {name} is set in {winning.Where}; ALTER SYSTEM cannot set it, so a manifest cannot: not imported");
                continue;
            }
            if (live.TryGetValue(name, out var meta) && meta.Setting.Source is "command line" or "environment variable")
            {
                continue; // noted above
            }
            if (auto is not null && !winning.IsAutoConf && SettingNormalized(meta.Info, winning.Setting) != SettingNormalized(meta.Info, auto.Setting))
            {
                context.Note($"settings: {name} is set in postgresql.auto.conf, but {winning.Where} is read after it and wins (\"{winning.Setting}\"): ALTER SYSTEM cannot change it, not imported");
                continue;
            }
            if (meta.Info?.Context == "internal")
            {
                continue;
            }
            var value = all ? winning.Setting : auto!.Setting;
            if (Representable(context, $"settings.{name}", value) is not { } text)
            {
                continue;
            }
            if (name == "archive_command" && text.Length > 0 && !text.Contains("%p", StringComparison.Ordinal))
            {
                if (!context.Wants("archiving"))
                {
                    context.Note($"settings: archive_command \"{text}\" has no %p, which pgstate requires: not imported");
                }
                continue;
            }
            var shown = meta.Info is null ? text : SettingValues.Display(meta.Info, text);
            settings.Add(new YamlOutEntry(meta.Info?.Name ?? name, YamlOut.Setting(shown), After: all && !winning.IsAutoConf ? winning.Where : null));
        }
        if (settings.Count > 0)
        {
            fields.Add(new ImportedField(20, new YamlOutEntry("settings", new YamlOutMapping(settings),
                Above: [all ? "every parameter a configuration file sets (the file and line of the ones not in postgresql.auto.conf are named)" : "every parameter set in postgresql.auto.conf (ALTER SYSTEM)"])));
        }
        return fields;
    }

    private static string? SettingNormalized(ParameterInfo? info, string? raw) => info is null ? raw : SettingValues.Normalize(info, raw);

    private static string? Representable(ImportContext context, string address, string? value)
    {
        if (value is null)
        {
            return null;
        }
        if (TextSafety.HasControl(value))
        {
            context.Note($"{address}: the value holds a control character (newline, tab …), which no manifest field takes: not imported");
            return null;
        }
        if (value.Length > MaxValueLength)
        {
            context.Note($"{address}: the value is {value.Length:N0} characters long; pgstate writes at most {MaxValueLength:N0}: not imported");
            return null;
        }
        return value;
    }

    private sealed record ArchivingEntry(string Parameter, YamlOutEntry Entry);

    /// <summary>wal_level, archive_mode, archive_command (as a method) and archive_timeout, where a file or ALTER SYSTEM set them.</summary>
    private static List<ArchivingEntry> ImportArchiving(ImportContext context,
        Dictionary<string, (ParameterInfo Info, LiveSetting Setting)> live, Dictionary<string, List<FileSetting>> files)
    {
        string? Configured(string name)
        {
            if (!live.TryGetValue(name, out var l) || l.Setting.Source is "command line" or "environment variable")
            {
                return null;
            }
            return files.TryGetValue(name, out var rows) ? rows[^1].Setting : l.Setting.Source == "default" ? null : l.Setting.Setting;
        }
        var entries = new List<ArchivingEntry>();
        if (Configured("wal_level") is { } walLevel && Representable(context, "archiving.walLevel", walLevel) is not null)
        {
            var value = SettingValues.Normalize(live["wal_level"].Info, walLevel);
            if (value is "minimal" or "replica" or "logical")
            {
                entries.Add(new("wal_level", new YamlOutEntry("walLevel", YamlOut.String(value))));
            }
            else
            {
                context.Note($"archiving.walLevel: wal_level is \"{walLevel}\", which the manifest does not take: not imported");
            }
        }
        if (Configured("archive_mode") is { } mode)
        {
            var value = SettingValues.Normalize(live["archive_mode"].Info, mode);
            value = SettingValues.ParseBool(value) is { } b ? (b ? "on" : "off") : value;
            if (value is "on" or "off" or "always")
            {
                entries.Add(new("archive_mode", new YamlOutEntry("mode", YamlOut.String(value))));
            }
        }
        if (Configured("archive_command") is { Length: > 0 } command && Representable(context, "archiving.command", command) is not null)
        {
            if (CopyDestination(command) is { } destination)
            {
                entries.Add(new("archive_command", new YamlOutEntry("method", YamlOut.String("copy"), After: "pgstate's own archive_command (never overwrites, fsyncs)")));
                entries.Add(new("", new YamlOutEntry("destination", YamlOut.String(destination))));
                context.Facts.Publish(HostFacts.StorageDestinations, new StorageDestination("archive destination", destination, null));
            }
            else if (PgBackRestCommand().Match(command) is { Success: true } m && ArchiveCommands.PgBackRest(m.Groups[1].Value) == command)
            {
                entries.Add(new("archive_command", new YamlOutEntry("method", YamlOut.String("pgbackrest"))));
                entries.Add(new("", new YamlOutEntry("stanza", YamlOut.String(m.Groups[1].Value))));
                context.Note($"archiving: archive_command runs pgBackRest (stanza {m.Groups[1].Value}): pgbackrest.conf, its repositories and retention are not imported; declare spec.pgbackrest by hand (see the README's pgBackRest section)");
            }
            else if (!command.Contains("%p", StringComparison.Ordinal))
            {
                context.Note($"archiving: archive_command \"{command}\" has no %p, which pgstate requires: not imported");
            }
            else
            {
                entries.Add(new("archive_command", new YamlOutEntry("method", YamlOut.String("command"))));
                entries.Add(new("", new YamlOutEntry("command", YamlOut.String(command))));
            }
        }
        if (Configured("archive_timeout") is { } timeout)
        {
            var shown = SettingValues.Display(live["archive_timeout"].Info, timeout);
            entries.Add(new("archive_timeout", new YamlOutEntry("timeout", YamlOut.Setting(shown))));
        }
        return entries;
    }

    /// <summary>The destination when archive_command is exactly what method copy renders for it.</summary>
    internal static string? CopyDestination(string command)
    {
        var m = CopyCommand().Match(command);
        if (!m.Success)
        {
            return null;
        }
        var destination = m.Groups[1].Value.Replace("'\\''", "'", StringComparison.Ordinal).Replace("%%", "%", StringComparison.Ordinal);
        return destination.Length > 0 && ArchiveCommands.Copy(destination) == command ? destination : null;
    }

    [GeneratedRegex(@"^if \[ -f '((?:[^']|'\\'')*)'/%f \]")]
    private static partial Regex CopyCommand();

    [GeneratedRegex(@"^pgbackrest --stanza=([A-Za-z0-9_.-]+) archive-push %p\z")]
    private static partial Regex PgBackRestCommand();
}
