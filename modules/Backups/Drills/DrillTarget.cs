using System.Globalization;
using System.Text.RegularExpressions;
using PgState.Engine.Manifests;

namespace PgState.Modules.Backups;

/// <summary>Where a restore stops: the end of the archive, a moment, or a moment relative to the start of the run.</summary>
public abstract partial record DrillTarget
{
    public sealed record Latest : DrillTarget;

    public sealed record At(DateTimeOffset Time) : DrillTarget;

    public sealed record Ago(TimeSpan Duration) : DrillTarget;

    public static DrillTarget LatestTarget { get; } = new Latest();

    /// <summary>The moment recovery stops at, for a run that starts at <paramref name="nowUtc"/>; null for latest (the end of the archive).</summary>
    public DateTime? Resolve(DateTime nowUtc) => this switch
    {
        At at => at.Time.UtcDateTime,
        Ago ago => nowUtc - ago.Duration,
        _ => null,
    };

    /// <summary>As written in a manifest.</summary>
    public string Describe() => this switch
    {
        At at => at.Time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.FFFFFF'+00'", CultureInfo.InvariantCulture),
        Ago ago => Durations.Format(ago.Duration) + " ago",
        _ => "latest",
    };

    /// <summary>latest | a timestamp with a time zone (2026-03-01 12:00:00+00, 2026-03-01T12:00:00Z) | DURATION ago (1h ago).</summary>
    public static bool TryParse(string text, out DrillTarget target, out string? error)
    {
        target = LatestTarget;
        error = null;
        var t = text.Trim();
        if (t == "latest")
        {
            return true;
        }
        var ago = AgoForm().Match(t);
        if (ago.Success)
        {
            if (!Durations.TryParse(ago.Groups[1].Value, out var duration, out var durationError))
            {
                error = durationError;
                return false;
            }
            if (duration <= TimeSpan.Zero)
            {
                error = "a target of 0 ago is latest: write latest";
                return false;
            }
            target = new Ago(duration);
            return true;
        }
        var m = TimestampForm().Match(t);
        if (m.Success)
        {
            if (!m.Groups["zone"].Success)
            {
                error = $"\"{TextSafety.Printable(text)}\" has no time zone: add Z or an offset such as +00 or +02:00 (the server and this host may not agree on local time)";
                return false;
            }
            var zone = m.Groups["zone"].Value;
            zone = zone == "Z" ? "+00:00" : zone.Length == 3 ? zone + ":00" : zone.Length == 5 ? zone[..3] + ":" + zone[3..] : zone;
            var seconds = m.Groups["sec"].Success ? m.Groups["sec"].Value : "00";
            var fraction = m.Groups["frac"].Success ? m.Groups["frac"].Value.PadRight(7, '0')[..7] : "0000000";
            var normal = $"{m.Groups["date"].Value}T{m.Groups["hm"].Value}:{seconds}.{fraction}{zone}";
            if (DateTimeOffset.TryParseExact(normal, "yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
            {
                target = new At(time);
                return true;
            }
            error = $"\"{TextSafety.Printable(text)}\" is not a valid date and time";
            return false;
        }
        error = $"\"{TextSafety.Printable(text)}\" is not latest, a timestamp with a time zone (\"2026-03-01 12:00:00+00\") or \"DURATION ago\" (\"1h ago\")";
        return false;
    }

    [GeneratedRegex(@"^([0-9]+[a-z]+)\s+ago\z")]
    private static partial Regex AgoForm();

    [GeneratedRegex(@"^(?<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[ T](?<hm>[0-9]{2}:[0-9]{2})(:(?<sec>[0-9]{2})(\.(?<frac>[0-9]{1,9}))?)?\s*(?<zone>Z|[+-][0-9]{2}(:?[0-9]{2})?)?\z")]
    private static partial Regex TimestampForm();
}
