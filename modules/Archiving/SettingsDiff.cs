using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Archiving;

/// <summary>A parameter the manifest wants: a value to set, or null to RESET it.</summary>
public sealed record DesiredSetting(string Name, string? Value, SourcePosition? Position, string Origin);

/// <summary>One row of pg_settings, what is active in the server now.</summary>
public sealed record LiveSetting(ParameterInfo Info, string? Setting, string Source, bool PendingRestart, string? BootVal);

/// <summary>One row of pg_file_settings: what a configuration file says, read fresh from disk.</summary>
public sealed record FileSetting(string Name, string? SourceFile, int? SourceLine, int Seqno, string? Setting, string? Error)
{
    public bool IsAutoConf => SourceFile?.EndsWith("postgresql.auto.conf", StringComparison.Ordinal) == true;

    public string Where => $"{SourceFile}:{SourceLine}";
}

/// <summary>Applying a setting: ALTER SYSTEM SET name = value, or RESET when Value is null.</summary>
public sealed record SettingWrite(string Name, string? Value);

/// <summary>
/// Diffs desired parameters against pg_settings and pg_file_settings, telling apart: converged,
/// differs (a change), written but reload pending, written but restart pending, and overridden
/// (the command line or a file read after postgresql.auto.conf wins, so ALTER SYSTEM cannot).
/// </summary>
public static class SettingsDiff
{
    public const string Module = "archiving";

    public static void Diff(
        IReadOnlyList<DesiredSetting> desired,
        IReadOnlyDictionary<string, LiveSetting> live,
        ILookup<string, FileSetting> files,
        bool filesReadable,
        RestartPolicy restartPolicy,
        Diff<SettingWrite> diff)
    {
        if (!filesReadable && desired.Count > 0)
        {
            diff.Warn(null, "cannot read pg_file_settings (needs superuser): written-but-not-active values cannot be told apart from differences");
        }
        foreach (var d in desired)
        {
            var address = "settings." + d.Name;
            if (!live.TryGetValue(d.Name, out var meta))
            {
                if (d.Value is not null)
                {
                    diff.Warn(address, "the server does not know this parameter (is its extension loaded?); it is not planned");
                }
                continue;
            }
            var info = meta.Info;
            string N(string? raw) => SettingValues.Normalize(info, raw);
            string Show(string? raw) => SettingValues.Display(info, raw);
            var rows = files[d.Name].OrderBy(r => r.Seqno).ToList();
            var winning = rows.LastOrDefault();
            var autoRow = rows.LastOrDefault(r => r.IsAutoConf);
            var active = N(meta.Setting);
            var activation = info.Context == "postmaster" ? Activation.Restart : Activation.Reload;

            if (d.Value is null)
            {
                if (autoRow is null)
                {
                    continue;
                }
                diff.Add(address, ChangeAction.Delete, Show(autoRow.Setting), null, activation, new SettingWrite(d.Name, null),
                    "ALTER SYSTEM RESET: falls back to postgresql.conf or the built-in default");
                continue;
            }

            var want = N(d.Value);
            if (meta.Source is "command line" or "override")
            {
                if (active != want)
                {
                    diff.Warn(address,
                        $"overridden: set on the server's command line to \"{Show(meta.Setting)}\"; ALTER SYSTEM cannot win over it — change the service's start options (want \"{Show(d.Value)}\")");
                }
                continue;
            }
            if (winning is not null && !winning.IsAutoConf && autoRow is not null && winning.Seqno > autoRow.Seqno && N(winning.Setting) != want)
            {
                diff.Warn(address,
                    $"overridden: {winning.Where} sets \"{Show(winning.Setting)}\" and is read after postgresql.auto.conf; ALTER SYSTEM cannot win over it (want \"{Show(d.Value)}\")");
                continue;
            }

            // What the server will run with after the next reload or restart.
            var target = winning is not null ? N(winning.Setting) : meta.Source == "configuration file" ? N(meta.BootVal) : active;
            if (meta.Source == "client" && winning is not null)
            {
                // pgstate's own connection set this one (application_name, search_path …): its session
                // value says nothing about the server's; what the files hold is what every session gets.
                active = target;
            }
            if (target == want)
            {
                if (active != want && !(info.VarType == "string" && Canonical(active) == Canonical(want)))
                {
                    diff.AddPending(address, Show(d.Value), activation, PendingNote(activation, restartPolicy, Show(meta.Setting)));
                }
                continue;
            }
            var note = target != active ? $"the files hold \"{Show(winning?.Setting)}\", not active yet" : null;
            if (activation == Activation.Restart)
            {
                var restartNote = restartPolicy == RestartPolicy.Never
                    ? "takes effect only after a restart; restart.policy is never, so it will stay pending"
                    : "takes effect after a restart; restart.policy is allowed, so apply restarts PostgreSQL";
                note = note is null ? restartNote : note + "; " + restartNote;
            }
            diff.Add(address, ChangeAction.Update, Show(meta.Setting), Show(d.Value), activation, new SettingWrite(d.Name, d.Value), note);
        }
    }

    /// <summary>
    /// PostgreSQL reports some string parameters in its own spelling (DateStyle = iso, mdy runs as
    /// "ISO, MDY"): a value the files hold is not "pending" for a difference of case or spaces alone.
    /// </summary>
    private static string Canonical(string value) =>
        new string([.. value.Where(c => !char.IsWhiteSpace(c)).Select(char.ToLowerInvariant)]);

    private static string PendingNote(Activation needs, RestartPolicy policy, string activeShown) => needs switch
    {
        Activation.Restart when policy == RestartPolicy.Never =>
            $"the server still runs with \"{activeShown}\"; restart.policy is never: restart PostgreSQL to activate it",
        Activation.Restart => $"the server still runs with \"{activeShown}\"; apply will restart PostgreSQL",
        _ => $"the server still runs with \"{activeShown}\"; apply will reload the configuration",
    };

    public static string Digest(IReadOnlyList<DesiredSetting> desired, IReadOnlyDictionary<string, LiveSetting> live, ILookup<string, FileSetting> files)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var name in desired.Select(d => d.Name).Order(StringComparer.Ordinal))
        {
            live.TryGetValue(name, out var l);
            sb.Append(name).Append('=').Append(l?.Setting).Append('|').Append(l?.Source);
            foreach (var r in files[name].OrderBy(r => r.Seqno))
            {
                sb.Append('|').Append(r.SourceFile).Append(':').Append(r.Setting);
            }
            sb.Append(';');
        }
        return sb.ToString();
    }
}
