using System.Text.RegularExpressions;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Archiving;

/// <summary>spec.archiving: wal_level, archive_mode, archive_timeout and archive_command from a method.</summary>
public sealed record ArchivingSection(
    Located<string>? WalLevel,
    Located<string>? Mode,
    Located<string>? Timeout,
    Located<string>? Method,
    Located<string>? Destination,
    Located<string>? Stanza,
    Located<string>? Command,
    Located<string>? RestoreCommand);

/// <summary>
/// spec.archiving (wal_level, archive_mode, archive_timeout, archive_command from a method) and
/// spec.settings (any other parameter), managed with ALTER SYSTEM.
/// </summary>
public sealed partial class ArchivingModule : IModule
{
    /// <summary>The longest setting value pgstate writes (a 50 MB value once made a backend spin for minutes).</summary>
    public const int MaxValueLength = 8 * 1024;

    public string Name => SettingsDiff.Module;

    public int Order => 50;

    public IBound? Bind(BindContext context)
    {
        var spec = context.Spec;
        var diagnostics = context.Diagnostics;
        var desired = new List<DesiredSetting>();
        var origins = new Dictionary<string, DesiredSetting>(StringComparer.Ordinal);
        void Add(string name, string? value, SourcePosition position, string origin)
        {
            var setting = new DesiredSetting(name, value, position, origin);
            if (value is not null && value.Length > MaxValueLength)
            {
                diagnostics.Error(DiagnosticCodes.ValueTooLong, $"{origin}: the value is {value.Length:N0} characters long; pgstate writes at most {MaxValueLength:N0}", position);
                return;
            }
            if (value is not null && SettingLists.Problem(name, value) is { } listProblem)
            {
                diagnostics.Error(DiagnosticCodes.InvalidParameterValue, $"{origin}: {listProblem}", position);
                return;
            }
            if (origins.TryGetValue(name, out var first))
            {
                diagnostics.Error(DiagnosticCodes.ParameterTwice, $"parameter {name} is set twice: by {origin} and by {first.Origin} at {first.Position}", position);
                return;
            }
            origins[name] = setting;
            desired.Add(setting);
        }

        if (spec.Mapping("archiving") is { } archiving)
        {
            var section = new ArchivingSection(archiving.LocatedString("walLevel"), archiving.LocatedString("mode"), TimeoutText(archiving),
                archiving.LocatedString("method"), archiving.LocatedString("destination"), archiving.LocatedString("stanza"),
                archiving.LocatedString("command"), archiving.LocatedString("restoreCommand"));
            BindArchiving(section, archiving, diagnostics, Add);
            Publish(section, context.Facts);
        }
        if (spec.Mapping("settings") is { } settings)
        {
            foreach (var node in settings.Values)
            {
                var name = node.Key!;
                if (!ParameterName().IsMatch(name) || name.Length > 63)
                {
                    diagnostics.Error(DiagnosticCodes.BadParameterName, $"'{name}' is not a valid parameter name", node.KeyOrPosition);
                    continue;
                }
                if (node is not YamlScalar scalar)
                {
                    continue; // the schema reports the type
                }
                var value = scalar.IsNull ? null : scalar.ScalarText(booleansAsOnOff: true);
                if (name == "archive_command" && !string.IsNullOrEmpty(value) && !value.Contains("%p", StringComparison.Ordinal))
                {
                    diagnostics.Error(DiagnosticCodes.ArchiveCommandWithoutPath, "archive_command must contain %p (the path of the WAL file to archive)", scalar.Position);
                }
                Add(name, value, node.KeyOrPosition, $"spec.settings.{name}");
            }
        }
        return desired.Count == 0 ? null : new BoundArchiving(desired, context.Host.Restart.Policy);
    }

    private static Located<string>? TimeoutText(YamlMapping archiving) =>
        archiving.Scalar("timeout") is { IsNull: false } t ? new Located<string>(t.ScalarText(), t.Position) : null;

    private static void Publish(ArchivingSection section, FactBag facts)
    {
        if (section.Method is not { } method)
        {
            return;
        }
        facts.Publish(HostFacts.ArchiveMethod, new ArchiveMethodFact(method.Value, section.Destination?.Value.TrimEnd('/'), section.Stanza?.Value, method.Position)
        {
            RestoreCommand = section.RestoreCommand?.Value,
        });
        if (method.Value == "copy" && section.Destination is { } destination)
        {
            facts.Publish(HostFacts.StorageDestinations, new StorageDestination("archive destination", destination.Value.TrimEnd('/'), destination.Position));
        }
    }

    private static void BindArchiving(ArchivingSection a, YamlMapping node, DiagnosticBag diagnostics, Action<string, string?, SourcePosition, string> add)
    {
        if (a.WalLevel is { } walLevel)
        {
            add("wal_level", walLevel.Value, node["walLevel"]!.KeyOrPosition, "spec.archiving.walLevel");
        }
        if (a.Mode is { } mode)
        {
            add("archive_mode", mode.Value, node["mode"]!.KeyOrPosition, "spec.archiving.mode");
        }
        if (a.Timeout is { } timeout)
        {
            if (!GucTime().IsMatch(timeout.Value))
            {
                diagnostics.Error(DiagnosticCodes.BadSettingValue,
                    $"spec.archiving.timeout: \"{timeout.Value}\" is not a time PostgreSQL reads (a number with an optional unit: 300, 30s, 5min, 1h)", timeout.Position);
            }
            add("archive_timeout", timeout.Value, node["timeout"]!.KeyOrPosition, "spec.archiving.timeout");
        }
        var method = a.Method?.Value;
        foreach (var (field, value, owner) in new[] { ("destination", a.Destination, "copy"), ("stanza", a.Stanza, "pgbackrest"), ("command", a.Command, "command") })
        {
            if (value is { } v && method != owner)
            {
                diagnostics.Error(DiagnosticCodes.FieldOfOtherMethod, $"spec.archiving.{field} is only used with method: {owner}" + (method is null ? " (method is not set)" : $" (method is {method})"), node[field]!.KeyOrPosition);
            }
        }
        if (a.Method is not { } m)
        {
            return;
        }
        var methodKey = node["method"]!.KeyOrPosition;
        string? command = null;
        switch (m.Value)
        {
            case "copy":
                if (a.Destination is not { } destination)
                {
                    diagnostics.Error(DiagnosticCodes.MethodFieldMissing, "method copy needs spec.archiving.destination (the archive directory)", methodKey);
                    return;
                }
                if (destination.Value.TrimEnd('/').Length == 0)
                {
                    diagnostics.Error(DiagnosticCodes.UnsafePath, "spec.archiving.destination: / cannot be the archive directory", destination.Position);
                    return;
                }
                command = ArchiveCommands.Copy(destination.Value);
                break;
            case "pgbackrest":
                if (a.Stanza is not { } stanza)
                {
                    diagnostics.Error(DiagnosticCodes.MethodFieldMissing, "method pgbackrest needs spec.archiving.stanza", methodKey);
                    return;
                }
                command = ArchiveCommands.PgBackRest(stanza.Value);
                break;
            case "command":
                if (a.Command is not { } custom)
                {
                    diagnostics.Error(DiagnosticCodes.MethodFieldMissing, "method command needs spec.archiving.command", methodKey);
                    return;
                }
                if (!custom.Value.Contains("%p", StringComparison.Ordinal))
                {
                    diagnostics.Error(DiagnosticCodes.ArchiveCommandWithoutPath, "archive_command must contain %p (the path of the WAL file to archive)", custom.Position);
                    return;
                }
                command = custom.Value;
                break;
            default:
                return; // the schema reports it
        }
        add("archive_command", command, methodKey, "spec.archiving.method");
    }

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\z")]
    private static partial Regex ParameterName();

    [GeneratedRegex(@"^\s*-?[0-9]+(\.[0-9]+)?\s*(us|ms|s|min|h|d)?\s*\z")]
    private static partial Regex GucTime();
}

/// <summary>archive_command text per method, from the module's Scriban templates.</summary>
public static class ArchiveCommands
{
    public static string Copy(string destination) => TemplateRenderer.Render(typeof(ArchiveCommands).Assembly,
        "PgState.Modules.Archiving.archive_command_copy.sbn", new TemplateModel().Set("dest", ShellQuote(destination.TrimEnd('/'))));

    /// <summary>pgBackRest's own default configuration file: archive_command names any other with --config.</summary>
    public const string DefaultPgBackRestConfig = "/etc/pgbackrest/pgbackrest.conf";

    public static string PgBackRest(string stanza, string? config = null) => TemplateRenderer.Render(typeof(ArchiveCommands).Assembly,
        "PgState.Modules.Archiving.archive_command_pgbackrest.sbn", new TemplateModel().Set("stanza", stanza)
            .Set("config", config is null || config == DefaultPgBackRestConfig ? null : ShellQuote(config)));

    /// <summary>Single-quotes a path for sh, and doubles % because the server expands %p, %f, %%.</summary>
    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''").Replace("%", "%%") + "'";
}

/// <summary>What the catalogs say about the desired parameters.</summary>
internal sealed record SettingsLive(
    IReadOnlyDictionary<string, LiveSetting> Live,
    ILookup<string, FileSetting> Files,
    bool FilesReadable,
    IReadOnlyList<string> AllNames,
    string ServerVersion);

internal sealed class BoundArchiving(IReadOnlyList<DesiredSetting> initial, RestartPolicy restartPolicy) : BoundModule<SettingsLive, SettingWrite>
{
    private List<DesiredSetting> _desired = [.. initial];

    private CatalogQuery<(ParameterInfo Info, LiveSetting Setting)>? _settings;
    private CatalogQuery<FileSetting>? _files;

    public override string Name => SettingsDiff.Module;

    public IReadOnlyList<DesiredSetting> Desired => _desired;

    public override void CheckFacts(FactBag facts, DiagnosticBag diagnostics)
    {
        if (facts.One(HostFacts.ArchiveMethod) is { Method: "pgbackrest", Stanza: { } stanza } method
            && facts.One(HostFacts.PgBackRest) is { } pgbackrest)
        {
            if (pgbackrest.Stanza != stanza)
            {
                diagnostics.Error(DiagnosticCodes.StanzaMismatch,
                    $"spec.archiving.stanza is \"{stanza}\" but spec.pgbackrest.stanza (at {pgbackrest.Position}) is \"{pgbackrest.Stanza}\": archive-push would write to another stanza",
                    method.Position);
            }
            else if (pgbackrest.ConfigPath != ArchiveCommands.DefaultPgBackRestConfig)
            {
                // archive-push must read the configuration pgstate writes, wherever spec.pgbackrest puts it.
                _desired = [.. _desired.Select(d => d.Name == "archive_command" && d.Origin == "spec.archiving.method"
                    ? d with { Value = ArchiveCommands.PgBackRest(stanza, pgbackrest.ConfigPath) } : d)];
            }
        }
    }

    public override void DeclareReads(CatalogReads reads, ServerInfo server)
    {
        var names = _desired.Select(d => d.Name).ToArray();
        _settings = reads.Add(SettingColumns + "where name = any($1)", ReadSetting, [names]);
        _files = server.IsSuperuser
            ? reads.Add(FileSettingColumns + "where lower(name) = any($1) order by seqno", ReadFileSetting, [names.Select(n => n.ToLowerInvariant()).ToArray()])
            : null;
    }

    /// <summary>pg_settings as the diff reads it (import reads every row with the same columns).</summary>
    internal const string SettingColumns =
        "select name, setting, unit, vartype, context, source, pending_restart, boot_val, min_val, max_val, enumvals, reset_val from pg_settings ";

    internal const string FileSettingColumns = "select name, sourcefile, sourceline, seqno, setting, error from pg_file_settings ";

    internal static (ParameterInfo Info, LiveSetting Setting) ReadSetting(NpgsqlDataReader r)
    {
        var info = new ParameterInfo(r.GetString(0), r.GetString(3), r.IsDBNull(2) ? null : r.GetString(2), r.GetString(4),
            r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? [] : r.GetFieldValue<string[]>(10));
        var setting = r.IsDBNull(1) ? null : r.GetString(1);
        if (info.Name == "archive_command" && setting == "(disabled)")
        {
            // SHOW masks archive_command while archive_mode is off; reset_val holds the configured value.
            setting = r.IsDBNull(11) ? "" : r.GetString(11);
        }
        return (info, new LiveSetting(info, setting, r.GetString(5), r.GetBoolean(6), r.IsDBNull(7) ? null : r.GetString(7)));
    }

    internal static FileSetting ReadFileSetting(NpgsqlDataReader r) =>
        new(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetInt32(2), r.GetInt32(3),
            r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5));

    protected override async Task<SettingsLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var live = _settings!.Rows.ToDictionary(r => r.Info.Name, r => r.Setting, StringComparer.Ordinal);
        var files = (_files?.Rows ?? []).ToLookup(f => f.Name, StringComparer.OrdinalIgnoreCase); // postgresql.conf may write datestyle for DateStyle
        List<string> all = [];
        if (_desired.Any(d => !live.ContainsKey(d.Name) && !d.Name.Contains('.', StringComparison.Ordinal)))
        {
            // Only when a name is unknown: every name, for a "did you mean" hint.
            await using var cmd = new NpgsqlCommand("select name from pg_settings", session.Connection);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                all.Add(reader.GetString(0));
            }
        }
        return new SettingsLive(live, files, _files is not null, all, session.Server.Version);
    }

    protected override void ValidateLive(SettingsLive live, DiagnosticBag diagnostics)
    {
        foreach (var d in _desired)
        {
            if (!live.Live.TryGetValue(d.Name, out var meta))
            {
                if (d.Name.Contains('.', StringComparison.Ordinal))
                {
                    continue; // an extension's placeholder parameter: the server cannot check it before the extension loads
                }
                var hint = Closest(d.Name, live.AllNames);
                diagnostics.Error(DiagnosticCodes.UnknownParameter, $"unknown parameter '{d.Name}' for PostgreSQL {live.ServerVersion}" + (hint is null ? "" : $" (did you mean '{hint}'?)"), d.Position);
                continue;
            }
            if (meta.Info.Context == "internal")
            {
                diagnostics.Error(DiagnosticCodes.ReadOnlyParameter, $"parameter '{d.Name}' is read-only (context internal) and cannot be set", d.Position);
                continue;
            }
            if (d.Value is not null && !SettingValues.TryNormalize(meta.Info, d.Value, out _, out var error))
            {
                diagnostics.Error(DiagnosticCodes.InvalidParameterValue, $"{d.Origin}: {error} ({meta.Info.VarType}" + (meta.Info.Unit is null ? "" : $", unit {meta.Info.Unit}") + ")", d.Position);
            }
        }
    }

    public override void Diff(SettingsLive live, Diff<SettingWrite> diff) =>
        SettingsDiff.Diff(_desired, live.Live, live.Files, live.FilesReadable, restartPolicy, diff);

    public override string Digest(SettingsLive live) => SettingsDiff.Digest(_desired, live.Live, live.Files);

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<SettingWrite> change, CancellationToken cancellationToken)
    {
        var write = change.Payload;
        // ALTER SYSTEM takes no bind parameters: the name is a quoted identifier, the value an E'' literal
        // (read the same whatever standard_conforming_strings says; the session pins it on too).
        var sql = write.Value is null
            ? $"ALTER SYSTEM RESET {Sql.Identifier(write.Name)}"
            : $"ALTER SYSTEM SET {Sql.Identifier(write.Name)} = {SettingLists.Literals(write.Name, write.Value)}";
        await using var cmd = new NpgsqlCommand(sql, session.Connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
        return null;
    }

    private static string? Closest(string name, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (c, d: Levenshtein(name, c))).OrderBy(x => x.d).FirstOrDefault();
        return best.c is not null && best.d <= Math.Max(2, name.Length / 4) ? best.c : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var prev = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var temp = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), prev + (a[i - 1] == b[j - 1] ? 0 : 1));
                prev = temp;
            }
        }
        return row[b.Length];
    }
}
