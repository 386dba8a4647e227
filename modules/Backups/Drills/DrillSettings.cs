using System.Globalization;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>A read-only query run on the recovered server, and what its one value must be.</summary>
public sealed record DrillProbe(string Name, string Sql, string? Database, string? Expect, decimal? Min, decimal? Max, SourcePosition? Position)
{
    /// <summary>Checks a probe's value; null when it passes, else why not.</summary>
    public string? Judge(string? value)
    {
        if (Expect is { } expected && value != expected)
        {
            return $"expected {expected}, got {(value is null ? "NULL" : value)}";
        }
        if (Min is null && Max is null)
        {
            return null;
        }
        if (value is null || !decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return $"expected a number{Bounds()}, got {(value is null ? "NULL" : value)}";
        }
        return (Min is { } min && number < min) || (Max is { } max && number > max) ? $"expected a value{Bounds()}, got {value}" : null;
    }

    private string Bounds() => (Min, Max) switch
    {
        ({ } a, { } b) => $" between {a.ToString(CultureInfo.InvariantCulture)} and {b.ToString(CultureInfo.InvariantCulture)}",
        ({ } a, null) => $" of at least {a.ToString(CultureInfo.InvariantCulture)}",
        (null, { } b) => $" of at most {b.ToString(CultureInfo.InvariantCulture)}",
        _ => "",
    };
}

/// <summary>spec.backups[].drill, bound: when and how far to restore, what to probe, the limits.</summary>
public sealed record DesiredDrill(
    string? Schedule,
    DrillTarget Target,
    IReadOnlyList<DrillProbe> Probes,
    TimeSpan? MaxRpo,
    TimeSpan? MaxRto,
    TimeSpan Timeout,
    string WorkDirectory,
    bool Keep,
    IReadOnlyList<(string Name, string Value)> Settings)
{
    public SourcePosition? Position { get; init; }

    public SourcePosition? SchedulePosition { get; init; }

    public SourcePosition? TargetPosition { get; init; }

    public SourcePosition? WorkDirectoryPosition { get; init; }

    /// <summary>The drill `pgstate restore drill NAME` runs for a backup whose manifest declares none: latest, no probes, no limits.</summary>
    public static DesiredDrill Default(DesiredBackup backup) =>
        new(null, DrillTarget.LatestTarget, [], null, null, TimeSpan.FromHours(1), backup.Destination, false, []);
}

/// <summary>Binds and checks a drill section; everything that needs neither the server nor the other sections.</summary>
internal static partial class DrillBinder
{
    /// <summary>Parameters the drill sets itself to keep its server away from production; drill.settings may not change them.</summary>
    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "data_directory", "config_file", "hba_file", "ident_file", "external_pid_file", "port", "listen_addresses",
        "unix_socket_directories", "unix_socket_group", "unix_socket_permissions", "archive_mode", "archive_command", "archive_library",
        "restore_command", "recovery_end_command", "archive_cleanup_command", "primary_conninfo", "primary_slot_name", "hot_standby",
        "recovery_target", "recovery_target_name", "recovery_target_xid", "recovery_target_lsn", "recovery_target_time",
        "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action", "logging_collector", "log_destination",
        "lc_messages", "log_min_messages", "synchronous_standby_names", "stats_temp_directory", "restart_after_crash", "ssl", "cluster_name",
        // A drill that passes on a damaged backup, or loads code production does not: not a drill.
        "zero_damaged_pages", "ignore_invalid_pages", "ignore_checksum_failure", "ignore_system_indexes", "recovery_min_apply_delay",
        "ssl_passphrase_command", "shared_preload_libraries", "local_preload_libraries", "session_preload_libraries", "dynamic_library_path",
    };

    public static DesiredDrill? Bind(YamlMapping? node, string backupName, string destination, string scheduler, TimeSpan? retentionMaxAge,
        Located<string>? dataDirectory, DiagnosticBag diagnostics)
    {
        if (node is null)
        {
            return null;
        }
        var schedule = node.LocatedString("schedule");
        if (schedule is { } checkedSchedule
            && !PgState.Engine.Calendar.CalendarSpec.TryParse(checkedSchedule.Value, PgState.Engine.Calendar.CalendarTimeZone.SystemDefault, out _, out var calendarError))
        {
            diagnostics.Error(DiagnosticCodes.BadSchedule, $"backup {backupName}: drill.schedule \"{TextSafety.Printable(checkedSchedule.Value)}\" is not a valid systemd OnCalendar expression ({calendarError})", checkedSchedule.Position);
        }
        if (schedule is { } s && scheduler == "cron" && BackupUnits.ToCron(s.Value) is null)
        {
            diagnostics.Error(DiagnosticCodes.CronCannotSchedule, $"backup {backupName}: the drill's scheduler cron understands daily (\"*-*-* HH:MM:SS\") and weekly (\"Mon *-*-* HH:MM\") schedules; use systemd for \"{s.Value}\"", s.Position);
        }
        var targetText = node.LocatedString("target");
        var target = DrillTarget.LatestTarget;
        if (targetText is { } t)
        {
            if (!DrillTarget.TryParse(t.Value, out target, out var error))
            {
                diagnostics.Error(DiagnosticCodes.DrillTargetFormat, $"backup {backupName}: drill.target: {error}", t.Position);
            }
            else if (target is DrillTarget.At at && at.Time > DateTimeOffset.UtcNow)
            {
                diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backupName}: drill.target {t.Value} is in the future: recovery could never reach it", t.Position);
            }
            else if (target is DrillTarget.Ago ago && retentionMaxAge is { } maxAge && ago.Duration >= maxAge)
            {
                diagnostics.Error(DiagnosticCodes.DrillTargetBeforeBackup,
                    $"backup {backupName}: drill.target {t.Value} lies before every backup retention keeps (retention.maxAge {Durations.Format(maxAge)}): no backup could be restored to it", t.Position);
            }
        }
        var probes = new List<DrillProbe>();
        foreach (var p in node.Mappings("probes"))
        {
            if (p.String("name") is not { } name || p.LocatedString("sql") is not { } sql)
            {
                continue;
            }
            if (probes.Any(x => x.Name == name))
            {
                diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backupName}: drill probe {name} is listed twice", p.Position);
                continue;
            }
            if (ProbeSql.Check(sql.Value) is { } why)
            {
                diagnostics.Error(DiagnosticCodes.DrillProbeNotSelect, $"backup {backupName}: drill probe {name} is not one read-only query: {why}", sql.Position);
            }
            var min = p.Scalar("min")?.AsDecimal;
            var max = p.Scalar("max")?.AsDecimal;
            if (min is { } lo && max is { } hi && lo > hi)
            {
                diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backupName}: drill probe {name}: min {lo.ToString(CultureInfo.InvariantCulture)} is above max {hi.ToString(CultureInfo.InvariantCulture)}", p["min"]!.Position);
            }
            var expect = p.Scalar("expect") is { IsNull: false } e ? e.ScalarText() : null;
            probes.Add(new DrillProbe(name, sql.Value, p.String("database"), expect, min, max, p.Position));
        }
        var work = node.LocatedString("workDirectory");
        var workDirectory = Normalize(work?.Value ?? destination);
        var workPosition = work?.Position ?? node.KeyOrPosition;
        if (workDirectory.Any(c => c is '"' or '\'' or '\\' or '$' or '`' or '%') || workDirectory.Split('/').Contains(".."))
        {
            diagnostics.Error(DiagnosticCodes.DrillWorkDirectory,
                $"backup {backupName}: the drill's work directory {TextSafety.Printable(workDirectory)} holds a quote, backslash, $, `, % or .., which pg_ctl's command line cannot carry safely", workPosition);
        }
        if (workDirectory == "/")
        {
            diagnostics.Error(DiagnosticCodes.DrillWorkDirectory, $"backup {backupName}: / cannot be the drill's work directory", workPosition);
        }
        if (dataDirectory is null)
        {
            diagnostics.Error(DiagnosticCodes.BadDrill,
                $"backup {backupName}: a drill needs spec.dataDirectory (to run the server's own binaries as its owner, and to keep the scratch directory out of it)", node.KeyOrPosition);
        }
        else if (Inside(workDirectory, Normalize(dataDirectory.Value.Value)))
        {
            diagnostics.Error(DiagnosticCodes.DrillWorkDirectory,
                $"backup {backupName}: the drill's work directory {workDirectory} is {(workDirectory == Normalize(dataDirectory.Value.Value) ? "" : "inside ")}the production data directory {dataDirectory.Value.Value}", workPosition);
        }
        var settings = new List<(string, string)>();
        foreach (var v in node.Mapping("settings")?.Values ?? [])
        {
            var name = v.Key!;
            if (!ParameterName().IsMatch(name))
            {
                diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backupName}: drill.settings: '{TextSafety.Printable(name)}' is not a valid parameter name", v.KeyOrPosition);
            }
            else if (Reserved.Contains(name))
            {
                diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backupName}: drill.settings.{name}: the drill sets this parameter itself, to keep its server away from production", v.KeyOrPosition);
            }
            else if (v is YamlScalar { IsNull: false } scalar)
            {
                settings.Add((name, scalar.ScalarText(booleansAsOnOff: true)));
            }
        }
        return new DesiredDrill(schedule?.Value, target, probes,
            node.Duration("maxRpo", diagnostics)?.Value, node.Duration("maxRto", diagnostics)?.Value,
            node.Duration("timeout", diagnostics)?.Value ?? TimeSpan.FromHours(1),
            workDirectory, node.Bool("keep") ?? false, settings)
        {
            Position = node.KeyOrPosition,
            SchedulePosition = schedule?.Position,
            TargetPosition = targetText?.Position,
            WorkDirectoryPosition = workPosition,
        };
    }

    /// <summary>After every section bound: the archive can be read back, and the work directory is not inside it.</summary>
    public static void CheckFacts(DesiredBackup backup, FactBag facts, DiagnosticBag diagnostics)
    {
        if (backup.Drill is not { } drill)
        {
            return;
        }
        var archive = facts.One(HostFacts.ArchiveMethod);
        if (RestoreCommands.For(archive, facts.One(HostFacts.PgBackRest), out var error) is null)
        {
            diagnostics.Error(DiagnosticCodes.BadDrill, $"backup {backup.Name}: {error}", archive?.Position ?? drill.Position);
        }
        if (archive is { Method: "copy", Destination: { } destination } && Inside(drill.WorkDirectory, Normalize(destination)))
        {
            diagnostics.Error(DiagnosticCodes.DrillWorkDirectory,
                $"backup {backup.Name}: the drill's work directory {drill.WorkDirectory} is {(drill.WorkDirectory == Normalize(destination) ? "" : "inside ")}the WAL archive {destination}: a drill never writes there", drill.WorkDirectoryPosition);
        }
    }

    public static string Normalize(string path) => path.Length > 1 ? path.TrimEnd('/') : path;

    /// <summary>True when <paramref name="path"/> is <paramref name="directory"/> or below it.</summary>
    public static bool Inside(string path, string directory) =>
        path == directory || path.StartsWith(directory == "/" ? "/" : directory + "/", StringComparison.Ordinal);

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\z")]
    private static partial Regex ParameterName();
}
