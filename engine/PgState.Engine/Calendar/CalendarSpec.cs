using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace PgState.Engine.Calendar;

/// <summary>
/// A systemd calendar event (OnCalendar=, systemd.time(7)), parsed, normalized and evaluated in
/// process with the same answers as systemd 252's <c>systemd-analyze calendar</c>: no process is spawned.
/// </summary>
/// <example>
/// Validate a schedule offline and report where it is wrong:
/// <code>
/// if (!CalendarSpec.TryParse(schedule, CalendarTimeZone.SystemDefault, out var spec, out var error))
///     diagnostics.Error(DiagnosticCodes.BadCalendar, $"schedule \"{schedule}\" is not a valid systemd OnCalendar expression ({error})", position);
/// </code>
/// Then <c>spec.Normalized</c> is what systemd-analyze prints as "Normalized form:",
/// <c>spec.NextElapse(now)</c> the next time the timer fires (null: never), and
/// <c>spec.PeriodAfter(now)</c> the interval between the next two elapses (what BackupChecks took from
/// <c>systemd-analyze calendar --iterations=2</c>); <c>spec.LongestInterval(now, n)</c> the longest gap
/// among the next n intervals (a Mon..Fri schedule: 3 days, not 1).
/// </example>
/// <remarks>
/// Expressions without a zone of their own are evaluated in the local zone given to
/// <see cref="TryParse(string, CalendarTimeZone, out CalendarSpec?, out string?)"/>: systemd's timers use
/// /etc/localtime (<see cref="CalendarTimeZone.SystemDefault"/>); systemd-analyze honours $TZ
/// (<see cref="CalendarTimeZone.FromTzVariable"/>). The local zone also decides which abbreviations
/// ("CET", "CEST") an expression may end with. Instances are immutable and thread-safe.
/// </remarks>
public sealed class CalendarSpec
{
    private static readonly string[] WeekdayShortNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    internal CalendarSpec(string text, int weekdayBits, CalendarComponent[]?[] fields, bool endOfMonth, bool utc, int dst, string? zoneName, CalendarTimeZone? zone, CalendarTimeZone localZone)
    {
        Text = text;
        WeekdayBits = weekdayBits;
        Fields = fields;
        EndOfMonth = endOfMonth;
        IsUtc = utc;
        Dst = dst;
        ZoneName = zoneName;
        Zone = zone;
        LocalZone = localZone;
        Normalized = Format();
    }

    /// <summary>The expression as written.</summary>
    public string Text { get; }

    /// <summary>The normalized form systemd-analyze prints ("Mon..Fri *-*-* 03:00:00").</summary>
    public string Normalized { get; }

    /// <summary>The zone the expression names ("Europe/Paris"), or null.</summary>
    public string? ZoneName { get; }

    /// <summary>The zone elapses are computed in: UTC, the named zone, or the local zone.</summary>
    public CalendarTimeZone EvaluationZone => IsUtc ? CalendarTimeZone.Utc : Zone ?? LocalZone;

    internal int WeekdayBits { get; }
    internal CalendarComponent[]?[] Fields { get; }
    internal bool EndOfMonth { get; }
    internal bool IsUtc { get; }
    internal int Dst { get; }
    internal CalendarTimeZone? Zone { get; }
    internal CalendarTimeZone LocalZone { get; }

    /// <summary>Parses in the local zone of /etc/localtime, the zone systemd's timers run in.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out CalendarSpec? spec, [NotNullWhen(false)] out string? error) =>
        TryParse(text, CalendarTimeZone.SystemDefault, out spec, out error);

    /// <summary>
    /// Parses <paramref name="text"/> as systemd does. On failure <paramref name="error"/> says what is
    /// wrong and where ("column 7: hour 25 is out of range (0-23)").
    /// </summary>
    public static bool TryParse(string text, CalendarTimeZone localZone, [NotNullWhen(true)] out CalendarSpec? spec, [NotNullWhen(false)] out string? error)
    {
        var ok = TryParseDetailed(text, localZone, out spec, out var detail);
        error = detail?.ToString();
        return ok;
    }

    /// <summary>As <see cref="TryParse(string, CalendarTimeZone, out CalendarSpec?, out string?)"/>, with the column apart.</summary>
    public static bool TryParseDetailed(string text, CalendarTimeZone localZone, [NotNullWhen(true)] out CalendarSpec? spec, [NotNullWhen(false)] out CalendarParseError? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(localZone);
        spec = CalendarParser.Parse(text, localZone, out error);
        return spec is not null;
    }

    /// <summary>The first elapse strictly after <paramref name="after"/>, or null if the expression never elapses again.</summary>
    public DateTimeOffset? NextElapse(DateTimeOffset after) => FindNextElapse(after).Time;

    /// <summary>The first elapse strictly after <paramref name="after"/>, with why there is none. Times before 1970 count as 1970-01-01 00:00:00 UTC.</summary>
    public CalendarElapse FindNextElapse(DateTimeOffset after)
    {
        var search = new CalendarSearch(this);
        var status = search.Next(ToUsec(after), out var next);
        return status == CalendarElapseStatus.Elapses ? new CalendarElapse(status, FromUsec(next)) : new CalendarElapse(status, null);
    }

    /// <summary>Up to <paramref name="count"/> successive elapses after <paramref name="after"/> (systemd-analyze --iterations).</summary>
    public IReadOnlyList<DateTimeOffset> NextElapses(DateTimeOffset after, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var result = new List<DateTimeOffset>(Math.Min(count, 1024));
        var usec = ToUsec(after);
        for (var i = 0; i < count; i++)
        {
            if (new CalendarSearch(this).Next(usec, out var next) != CalendarElapseStatus.Elapses)
            {
                break;
            }
            result.Add(FromUsec(next));
            usec = next;
        }
        return result;
    }

    /// <summary>The interval between the first two elapses after <paramref name="after"/>; null if there are not two.</summary>
    public TimeSpan? PeriodAfter(DateTimeOffset after) =>
        NextElapses(after, 2) is [var first, var second] ? second - first : null;

    /// <summary>
    /// The longest of the next <paramref name="intervals"/> intervals between successive elapses after
    /// <paramref name="after"/>: how long can legitimately pass between two runs. Null if the expression
    /// does not elapse twice.
    /// </summary>
    public TimeSpan? LongestInterval(DateTimeOffset after, int intervals)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(intervals, 1);
        var times = NextElapses(after, intervals + 1);
        TimeSpan? longest = null;
        for (var i = 1; i < times.Count; i++)
        {
            var gap = times[i] - times[i - 1];
            if (longest is null || gap > longest)
            {
                longest = gap;
            }
        }
        return longest;
    }

    public override string ToString() => Normalized;

    private static long ToUsec(DateTimeOffset instant)
    {
        var ticks = instant.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return ticks < 0 ? 0 : ticks / 10;
    }

    private DateTimeOffset FromUsec(long usec)
    {
        var instant = DateTimeOffset.UnixEpoch.AddTicks(usec * 10);
        var offset = EvaluationZone.OffsetAt(instant);
        // DateTimeOffset takes whole minutes only: a local mean time such as Monrovia's -0:44:30 (until 1972) stays UTC.
        return offset.Ticks % TimeSpan.TicksPerMinute == 0 ? instant.ToOffset(offset) : instant;
    }

    // ---- the normalized form (calendar_spec_to_string) ------------------------------------------

    private string Format()
    {
        var f = new StringBuilder(64);
        if (WeekdayBits is > 0 and <= 127)
        {
            FormatWeekdays(f);
            f.Append(' ');
        }
        FormatChain(f, 4, Fields[(int)CalendarField.Year], false);
        f.Append('-');
        FormatChain(f, 2, Fields[(int)CalendarField.Month], false);
        f.Append(EndOfMonth ? '~' : '-');
        FormatChain(f, 2, Fields[(int)CalendarField.Day], false);
        f.Append(' ');
        FormatChain(f, 2, Fields[(int)CalendarField.Hour], false);
        f.Append(':');
        FormatChain(f, 2, Fields[(int)CalendarField.Minute], false);
        f.Append(':');
        FormatChain(f, 2, Fields[(int)CalendarField.Second], true);
        if (IsUtc)
        {
            f.Append(" UTC");
        }
        else if (ZoneName is not null)
        {
            f.Append(' ').Append(ZoneName);
        }
        else if (Dst is 0 or 1)
        {
            var name = Dst == 0 ? LocalZone.StandardAbbreviation : LocalZone.DaylightAbbreviation;
            if (name.Length > 0)
            {
                f.Append(' ').Append(name);
            }
        }
        return f.ToString();
    }

    /// <summary>Runs of three or more days as "Mon..Wed", pairs as "Mon,Tue".</summary>
    private void FormatWeekdays(StringBuilder f)
    {
        var runStart = -1;
        var needComma = false;
        int x;
        for (x = 0; x < 7; x++)
        {
            if ((WeekdayBits & (1 << x)) != 0)
            {
                if (runStart < 0)
                {
                    if (needComma)
                    {
                        f.Append(',');
                    }
                    needComma = true;
                    f.Append(WeekdayShortNames[x]);
                    runStart = x;
                }
            }
            else if (runStart >= 0)
            {
                EndRun(f, runStart, x);
                runStart = -1;
            }
        }
        if (runStart >= 0)
        {
            EndRun(f, runStart, x);
        }
    }

    private static void EndRun(StringBuilder f, int runStart, int x)
    {
        if (x > runStart + 1)
        {
            f.Append(x > runStart + 2 ? ".." : ",").Append(WeekdayShortNames[x - 1]);
        }
    }

    private static void FormatChain(StringBuilder f, int width, CalendarComponent[]? chain, bool usec)
    {
        // '*' for any value, and for seconds when one element is every whole second from 0 (systemd 252's chain_is_star).
        if (chain is null || (usec && chain.Any(c => c.Start == 0 && c.Stop < 0 && c.Repeat == CalendarParser.MicrosecondsPerSecond)))
        {
            f.Append('*');
            return;
        }
        var d = usec ? CalendarParser.MicrosecondsPerSecond : 1;
        for (var i = 0; i < chain.Length; i++)
        {
            var c = chain[i];
            if (i > 0)
            {
                f.Append(',');
            }
            Number(f, c.Start / d, width);
            Fraction(f, c.Start % d);
            if (c.Stop > 0)
            {
                f.Append("..");
                Number(f, c.Stop / d, width);
            }
            Fraction(f, c.Stop % d);
            if (c.Repeat > 0 && !(c.Stop > 0 && c.Repeat == d))
            {
                f.Append('/').Append((c.Repeat / d).ToString(CultureInfo.InvariantCulture));
            }
            Fraction(f, c.Repeat % d);
        }
    }

    private static void Number(StringBuilder f, int value, int width) =>
        f.Append(value.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0'));

    private static void Fraction(StringBuilder f, int microseconds)
    {
        if (microseconds > 0)
        {
            f.Append('.').Append(microseconds.ToString("000000", CultureInfo.InvariantCulture));
        }
    }
}
