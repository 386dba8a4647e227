using System.Globalization;
using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Archiving;

/// <summary>
/// spec.archiving (wal_level, archive_mode, archive_timeout, archive_command from a method) and
/// spec.settings (any other parameter), managed with ALTER SYSTEM.
/// </summary>
public sealed partial class ArchivingModule : IModule
{
    public string Name => SettingsDiff.Module;

    public int Order => 50;

    public IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics)
    {
        var spec = host.Document.Spec;
        var desired = new List<DesiredSetting>();
        var origins = new Dictionary<string, DesiredSetting>(StringComparer.Ordinal);
        void Add(string name, string? value, JToken node, string origin)
        {
            var setting = new DesiredSetting(name, value, node.PositionOf(), origin);
            if (origins.TryGetValue(name, out var first))
            {
                diagnostics.Error("PGS101", $"parameter {name} is set twice: by {origin} and by {first.Origin} at {first.Position}", setting.Position);
                return;
            }
            origins[name] = setting;
            desired.Add(setting);
        }

        if (spec["archiving"] is JObject archiving)
        {
            BindArchiving(archiving, diagnostics, Add);
        }
        if (spec["settings"] is JObject settings)
        {
            foreach (var property in settings.Properties())
            {
                if (!ParameterName().IsMatch(property.Name))
                {
                    diagnostics.Error("PGS102", $"'{property.Name}' is not a valid parameter name", property.PositionOf());
                    continue;
                }
                var value = property.Value.Type == JTokenType.Null ? null : ValueText(property.Value);
                if (property.Name == "archive_command" && !string.IsNullOrEmpty(value) && !value.Contains("%p", StringComparison.Ordinal))
                {
                    diagnostics.Error("PGS103", "archive_command must contain %p (the path of the WAL file to archive)", property.Value.PositionOf());
                }
                Add(property.Name, value, property, $"spec.settings.{property.Name}");
            }
        }
        return desired.Count == 0 ? null : new BoundArchiving(desired);
    }

    private static void BindArchiving(JObject archiving, DiagnosticBag diagnostics, Action<string, string?, JToken, string> add)
    {
        if (archiving.Property("walLevel") is { } walLevel)
        {
            add("wal_level", ValueText(walLevel.Value), walLevel, "spec.archiving.walLevel");
        }
        if (archiving.Property("mode") is { } mode)
        {
            add("archive_mode", ValueText(mode.Value), mode, "spec.archiving.mode");
        }
        if (archiving.Property("timeout") is { } timeout)
        {
            add("archive_timeout", ValueText(timeout.Value), timeout, "spec.archiving.timeout");
        }
        var method = (string?)archiving["method"];
        foreach (var (field, owner) in new[] { ("destination", "copy"), ("stanza", "pgbackrest"), ("command", "command") })
        {
            if (archiving.Property(field) is { } p && method != owner)
            {
                diagnostics.Error("PGS104", $"spec.archiving.{field} is only used with method: {owner}" + (method is null ? " (method is not set)" : $" (method is {method})"), p.PositionOf());
            }
        }
        if (method is null)
        {
            return;
        }
        var methodNode = archiving.Property("method")!;
        string? command = null;
        switch (method)
        {
            case "copy":
                var destination = (string?)archiving["destination"];
                if (destination is null)
                {
                    diagnostics.Error("PGS105", "method copy needs spec.archiving.destination (the archive directory)", methodNode.PositionOf());
                    return;
                }
                command = ArchiveCommands.Copy(destination);
                break;
            case "pgbackrest":
                var stanza = (string?)archiving["stanza"];
                if (stanza is null)
                {
                    diagnostics.Error("PGS105", "method pgbackrest needs spec.archiving.stanza", methodNode.PositionOf());
                    return;
                }
                command = ArchiveCommands.PgBackRest(stanza);
                break;
            case "command":
                command = (string?)archiving["command"];
                if (command is null)
                {
                    diagnostics.Error("PGS105", "method command needs spec.archiving.command", methodNode.PositionOf());
                    return;
                }
                if (!command.Contains("%p", StringComparison.Ordinal))
                {
                    diagnostics.Error("PGS103", "archive_command must contain %p (the path of the WAL file to archive)", archiving["command"]!.PositionOf());
                    return;
                }
                break;
        }
        add("archive_command", command, methodNode, "spec.archiving.method");
    }

    private static string ValueText(JToken token) => token.Type switch
    {
        JTokenType.Boolean => (bool)token ? "on" : "off",
        JTokenType.Float => ((double)token).ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(((JValue)token).Value, CultureInfo.InvariantCulture) ?? "",
    };

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")]
    private static partial Regex ParameterName();
}

/// <summary>archive_command text per method, from the module's Scriban templates.</summary>
public static class ArchiveCommands
{
    public static string Copy(string destination) => TemplateRenderer.Render(typeof(ArchiveCommands).Assembly,
        "PgState.Modules.Archiving.archive_command_copy.sbn",
        new Dictionary<string, object?> { ["dest"] = ShellQuote(destination) });

    public static string PgBackRest(string stanza) => TemplateRenderer.Render(typeof(ArchiveCommands).Assembly,
        "PgState.Modules.Archiving.archive_command_pgbackrest.sbn",
        new Dictionary<string, object?> { ["stanza"] = stanza });

    /// <summary>Single-quotes a path for sh, and doubles % because the server expands %p, %f, %%.</summary>
    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''").Replace("%", "%%") + "'";
}

internal sealed class BoundArchiving(IReadOnlyList<DesiredSetting> desired) : IBoundModule
{
    public string Name => SettingsDiff.Module;

    public IReadOnlyList<DesiredSetting> Desired => desired;

    // The read done for live validation, kept for the plan that follows it at once (one round trip fewer).
    private (Dictionary<string, LiveSetting>, ILookup<string, FileSetting>, bool)? _validationRead;

    public async Task ValidateLiveAsync(IHostSession host, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        _validationRead = await ReadAsync(host, includeFiles: true, cancellationToken);
        var (live, _, _) = _validationRead.Value;
        List<string>? allNames = null;
        foreach (var d in desired)
        {
            if (!live.TryGetValue(d.Name, out var meta))
            {
                if (d.Name.Contains('.', StringComparison.Ordinal))
                {
                    continue; // an extension's placeholder parameter: the server cannot check it before the extension loads
                }
                allNames ??= await AllNamesAsync(host, cancellationToken);
                var hint = Closest(d.Name, allNames);
                diagnostics.Error("PGS110", $"unknown parameter '{d.Name}' for PostgreSQL {host.Server.Version}" + (hint is null ? "" : $" (did you mean '{hint}'?)"), d.Position);
                continue;
            }
            if (meta.Info.Context == "internal")
            {
                diagnostics.Error("PGS111", $"parameter '{d.Name}' is read-only (context internal) and cannot be set", d.Position);
                continue;
            }
            if (d.Value is not null && !SettingValues.TryNormalize(meta.Info, d.Value, out _, out var error))
            {
                diagnostics.Error("PGS112", $"{d.Origin}: {error} ({meta.Info.VarType}" + (meta.Info.Unit is null ? "" : $", unit {meta.Info.Unit}") + ")", d.Position);
            }
        }
    }

    public async Task<ModuleDiff> PlanAsync(IHostSession host, CancellationToken cancellationToken)
    {
        var (live, files, filesReadable) = _validationRead ?? await ReadAsync(host, includeFiles: true, cancellationToken);
        _validationRead = null;
        return SettingsDiff.Diff(desired, live, files, filesReadable, host.Host.Restart.Policy);
    }

    public async Task<string?> ApplyAsync(IHostSession host, ResourceChange change, CancellationToken cancellationToken)
    {
        var write = (SettingWrite)change.Payload!;
        var name = "\"" + write.Name.Replace("\"", "\"\"") + "\"";
        var sql = write.Value is null
            ? $"ALTER SYSTEM RESET {name}"
            : $"ALTER SYSTEM SET {name} = '{write.Value.Replace("'", "''")}'";
        await using var cmd = new NpgsqlCommand(sql, host.Connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
        return null;
    }

    /// <summary>pg_settings and pg_file_settings for the desired names, in one round trip.</summary>
    private async Task<(Dictionary<string, LiveSetting>, ILookup<string, FileSetting>, bool)> ReadAsync(
        IHostSession host, bool includeFiles, CancellationToken cancellationToken)
    {
        var names = desired.Select(d => d.Name).ToArray();
        var canReadFiles = includeFiles && await CanReadFileSettingsAsync(host, cancellationToken);
        var batch = new NpgsqlBatch(host.Connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "select name, setting, unit, vartype, context, source, pending_restart, boot_val, min_val, max_val, enumvals, reset_val " +
            "from pg_settings where name = any($1)")
        { Parameters = { new() { Value = names } } });
        if (canReadFiles)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "select name, sourcefile, sourceline, seqno, setting, error from pg_file_settings where name = any($1) order by seqno")
            { Parameters = { new() { Value = names } } });
        }
        var live = new Dictionary<string, LiveSetting>(StringComparer.Ordinal);
        var files = new List<FileSetting>();
        await using (batch)
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var info = new ParameterInfo(
                    reader.GetString(0),
                    reader.GetString(3),
                    reader.IsDBNull(2) ? null : reader.GetString(2),
                    reader.GetString(4),
                    reader.IsDBNull(8) ? null : reader.GetString(8),
                    reader.IsDBNull(9) ? null : reader.GetString(9),
                    reader.IsDBNull(10) ? [] : reader.GetFieldValue<string[]>(10));
                var setting = reader.IsDBNull(1) ? null : reader.GetString(1);
                if (info.Name == "archive_command" && setting == "(disabled)")
                {
                    // SHOW masks archive_command while archive_mode is off; reset_val holds the configured value.
                    setting = reader.IsDBNull(11) ? "" : reader.GetString(11);
                }
                live[info.Name] = new LiveSetting(info, setting, reader.GetString(5), reader.GetBoolean(6), reader.IsDBNull(7) ? null : reader.GetString(7));
            }
            if (canReadFiles && await reader.NextResultAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    files.Add(new FileSetting(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1),
                        reader.IsDBNull(2) ? null : reader.GetInt32(2), reader.GetInt32(3),
                        reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
                }
            }
        }
        return (live, files.ToLookup(f => f.Name, StringComparer.Ordinal), canReadFiles || !includeFiles);
    }

    private static async Task<bool> CanReadFileSettingsAsync(IHostSession host, CancellationToken cancellationToken)
    {
        if (host.Server.IsSuperuser)
        {
            return true;
        }
        await using var cmd = new NpgsqlCommand("select pg_has_role('pg_read_all_settings', 'member')", host.Connection);
        return (bool)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<List<string>> AllNamesAsync(IHostSession host, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("select name from pg_settings", host.Connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }
        return names;
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
