namespace PgState.Engine.Calendar;

/// <summary>A struct tm: fields may be out of range until a <see cref="LibcClock.Mktime"/> normalizes them.</summary>
internal struct BrokenDownTime
{
    public int Year;    // the full year (tm_year + 1900)
    public int Month;   // 0–11, as tm_mon
    public int Day;     // 1–31
    public int Hour;
    public int Minute;
    public int Second;
    public int IsDst;   // -1: unknown, let mktime decide
    public int WeekDay; // 0 = Sunday
    public int YearDay;
}

/// <summary>
/// glibc's localtime_r/gmtime_r and mktime/timegm over one zone, reproduced because systemd's calendar
/// search leans on their exact behaviour: mktime's guess of the UTC offset carried from its previous
/// call decides which of two repeated wall-clock times it picks when clocks go back, a time in a
/// spring-forward gap is moved by the size of the gap, and a tm_isdst that contradicts the date
/// borrows the offset of the nearest time that has it. One instance per calculation, like the static
/// offset guess inside a process.
/// </summary>
internal sealed class LibcClock(CalendarTimeZone? zone)
{
    private const int Stride = 601_200;
    private const int DeltaBound = 536_454_000 / 2 + Stride;

    /// <summary>mktime's guess: the result minus the requested fields read as UTC, from its last call.</summary>
    private long guess;

    public bool IsUtc { get; } = zone is null || zone.IsUtc;

    /// <summary>localtime_r (or gmtime_r in UTC).</summary>
    public BrokenDownTime Convert(long t)
    {
        var (offset, isDst) = IsUtc ? (0, false) : Lookup(t);
        var local = t + offset;
        var days = CivilTime.FloorDiv(local, CivilTime.SecondsPerDay);
        var seconds = (int)(local - days * CivilTime.SecondsPerDay);
        CivilTime.FromDays(days, out var year, out var month0, out var day, out var yday);
        return new BrokenDownTime
        {
            Year = (int)year,
            Month = month0,
            Day = day,
            Hour = seconds / 3600,
            Minute = seconds / 60 % 60,
            Second = seconds % 60,
            IsDst = isDst ? 1 : 0,
            WeekDay = CivilTime.WeekDay(days),
            YearDay = yday,
        };
    }

    private (int Offset, bool IsDst) Lookup(long t)
    {
        var (offset, isDst, _) = zone!.Lookup(t);
        return (offset, isDst);
    }

    /// <summary>
    /// mktime (timegm in UTC): normalizes <paramref name="tm"/> and returns true with the instant, or
    /// returns false and leaves <paramref name="tm"/> alone where glibc fails (no time with the
    /// requested DST flag nearby).
    /// </summary>
    public bool Mktime(ref BrokenDownTime tm, out long result)
    {
        result = -1;
        var isdst = IsUtc ? 0 : tm.IsDst;
        var sec = tm.Second;
        var monthRemainder = tm.Month % 12;
        var negativeRemainder = monthRemainder < 0 ? 1 : 0;
        long year = (long)tm.Year + tm.Month / 12 - negativeRemainder;
        long yday = CivilTime.DaysBefore(year, monthRemainder + 12 * negativeRemainder) - 1L + tm.Day;
        var secRequested = sec;
        // glibc handles out-of-range seconds (leap seconds) apart: 0–59 here, the rest added at the end.
        sec = Math.Clamp(sec, 0, 59);
        var requested = CivilTime.Linear(year, yday, tm.Hour, tm.Minute, sec);
        if (IsUtc)
        {
            var utc = requested + secRequested - sec;
            tm = Convert(utc);
            result = utc;
            return true;
        }

        var t0 = requested + guess;
        long t = t0, t1 = t0, t2 = t0;
        var dst2 = 0;
        var probes = 6;
        BrokenDownTime converted;
        while (true)
        {
            converted = Convert(t);
            var dt = requested - Fields(converted);
            if (dt == 0)
            {
                break;
            }
            // Oscillating between two values: the time falls in a spring-forward gap. glibc then
            // returns the time the gap away from the request, preferring a DST one when none was asked.
            if (t == t1 && t != t2 && (isdst < 0 ? dst2 <= (converted.IsDst != 0 ? 1 : 0) : (isdst != 0) != (converted.IsDst != 0)))
            {
                goto found;
            }
            if (--probes == 0)
            {
                return false;
            }
            t1 = t2;
            t2 = t;
            t += dt;
            dst2 = converted.IsDst != 0 ? 1 : 0;
        }

        if (isdst >= 0 && (isdst != 0) != (converted.IsDst != 0))
        {
            // The date has the other DST flag: use the offset of the nearest instant that has the
            // requested one, probing a week at a time in both directions.
            for (long delta = Stride; delta < DeltaBound; delta += Stride)
            {
                for (var direction = -1; direction <= 1; direction += 2)
                {
                    var ot = t + delta * direction;
                    var other = Convert(ot);
                    if ((isdst != 0) == (other.IsDst != 0))
                    {
                        t = ot + (requested - Fields(other));
                        converted = Convert(t);
                        goto found;
                    }
                }
            }
            return false;
        }

    found:
        guess = t - requested;
        if (secRequested != converted.Second)
        {
            t += secRequested - sec;
            converted = Convert(t);
        }
        tm = converted;
        result = t;
        return true;
    }

    private static long Fields(BrokenDownTime tm) => CivilTime.Linear(tm.Year, tm.YearDay, tm.Hour, tm.Minute, tm.Second);
}
