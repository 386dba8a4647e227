namespace PgState.Engine.Calendar;

/// <summary>Why an expression is not a valid calendar event, and where (1-based column in the expression).</summary>
public sealed record CalendarParseError(int Column, string Message)
{
    /// <summary>"column 7: hour 25 is out of range (0-23)".</summary>
    public override string ToString() => $"column {Column}: {Message}";
}

/// <summary>Why <see cref="CalendarSpec.FindNextElapse"/> found no time.</summary>
public enum CalendarElapseStatus
{
    /// <summary>The expression elapses at <see cref="CalendarElapse.Time"/>.</summary>
    Elapses,

    /// <summary>The expression never elapses after that instant (a past date, Feb 30, a time DST skips …): systemd-analyze prints "never".</summary>
    Never,

    /// <summary>systemd gave up after 1,000 search steps ("Infinite loop in calendar calculation"); systemd-analyze fails.</summary>
    SearchLimit,

    /// <summary>The instant is beyond what systemd can format (year 9999), or the result is before 1970.</summary>
    OutOfRange,
}

/// <summary>The outcome of one next-elapse search.</summary>
public readonly record struct CalendarElapse(CalendarElapseStatus Status, DateTimeOffset? Time);
