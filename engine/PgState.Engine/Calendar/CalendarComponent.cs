namespace PgState.Engine.Calendar;

/// <summary>
/// One element of a field's list: a value, a range start..stop, and/or a repetition start/repeat.
/// Seconds are kept in microseconds. Stop is -1 when there is no range, Repeat 0 when nothing repeats.
/// Column (1-based) is where the element was written, for error messages; 0 for shorthands.
/// </summary>
internal readonly record struct CalendarComponent(int Start, int Stop, int Repeat, int Column)
{
    public static CalendarComponent Value(int value, int column = 0) => new(value, -1, 0, column);
}

/// <summary>The fields of a calendar expression, in the order systemd validates and prints them.</summary>
internal enum CalendarField
{
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}
