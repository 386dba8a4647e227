namespace PgState.Engine.Calendar;

/// <summary>
/// The next-elapse search of systemd's calendarspec.c (find_next), step for step over glibc's
/// mktime: match the year, then month, day, weekday, hour, minute and seconds, restarting from the
/// normalized time whenever a step lands on a time that does not exist as written (Feb 30, a
/// spring-forward gap) and giving up after 1,000 steps as systemd does.
/// </summary>
internal sealed class CalendarSearch
{
    private const int MaximumYear = 2199;
    private const int MaximumIterations = 1000;
    private const int Usec = CalendarParser.MicrosecondsPerSecond;

    /// <summary>systemd's USEC_TIMESTAMP_FORMATTABLE_MAX: 9999-12-30 23:59:59.999999 UTC.</summary>
    public const long MaximumUsec = 253_402_214_399_999_999;

    private readonly CalendarSpec spec;
    private readonly LibcClock clock;

    public CalendarSearch(CalendarSpec spec)
    {
        this.spec = spec;
        // A named zone is evaluated in a child process with TZ=":zone"; "UTC" and @timestamps with gmtime.
        clock = new LibcClock(spec.IsUtc ? null : spec.Zone ?? spec.LocalZone);
    }

    private CalendarComponent[]? Field(CalendarField f) => spec.Fields[(int)f];

    /// <summary>calendar_spec_next_usec: the first elapse strictly after <paramref name="afterUsec"/>.</summary>
    public CalendarElapseStatus Next(long afterUsec, out long nextUsec)
    {
        nextUsec = 0;
        if (afterUsec > MaximumUsec)
        {
            return CalendarElapseStatus.OutOfRange;
        }
        var usec = afterUsec + 1;
        var tm = clock.Convert(usec / Usec);
        var tmUsec = (int)(usec % Usec);
        var status = FindNext(ref tm, ref tmUsec);
        if (status != CalendarElapseStatus.Elapses)
        {
            return status;
        }
        if (!clock.Mktime(ref tm, out var t) || t < 0)
        {
            return CalendarElapseStatus.OutOfRange;
        }
        nextUsec = t * Usec + tmUsec;
        return CalendarElapseStatus.Elapses;
    }

    private CalendarElapseStatus FindNext(ref BrokenDownTime start, ref int usecOfSecond)
    {
        var c = start;
        var tmUsec = usecOfSecond;
        var invalidateDst = false;
        for (var iteration = 0; iteration < MaximumIterations; iteration++)
        {
            clock.Mktime(ref c, out _);
            if (!invalidateDst)
            {
                c.IsDst = spec.Dst;
            }

            var value = c.Year;
            var r = Match(Field(CalendarField.Year), c, ref value, endOfMonth: false);
            c.Year = value;
            if (r > 0)
            {
                c.Month = 0;
                c.Day = 1;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
            }
            if (r < 0 || WithinBounds(ref c) <= 0)
            {
                return CalendarElapseStatus.Never;
            }

            value = c.Month + 1;
            r = Match(Field(CalendarField.Month), c, ref value, endOfMonth: false);
            c.Month = value - 1;
            if (r > 0)
            {
                c.Day = 1;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
            }
            if (r < 0 || (r = WithinBounds(ref c)) < 0)
            {
                c.Year++;
                c.Month = 0;
                c.Day = 1;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
                continue;
            }
            if (r == 0)
            {
                continue;
            }

            value = c.Day;
            r = Match(Field(CalendarField.Day), c, ref value, spec.EndOfMonth);
            c.Day = value;
            if (r > 0)
            {
                c.Hour = c.Minute = c.Second = tmUsec = 0;
            }
            if (r < 0 || (r = WithinBounds(ref c)) < 0)
            {
                c.Month++;
                c.Day = 1;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
                continue;
            }
            if (r == 0)
            {
                continue;
            }

            if (!MatchesWeekday(c))
            {
                c.Day++;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
                continue;
            }

            value = c.Hour;
            r = Match(Field(CalendarField.Hour), c, ref value, endOfMonth: false);
            c.Hour = value;
            if (r > 0)
            {
                c.Minute = c.Second = tmUsec = 0;
            }
            if (r < 0 || (r = WithinBounds(ref c)) < 0)
            {
                c.Day++;
                c.Hour = c.Minute = c.Second = tmUsec = 0;
                continue;
            }
            if (r == 0)
            {
                // The hour may not exist on this day (clocks moved): start again from the normalized time.
                continue;
            }

            value = c.Minute;
            r = Match(Field(CalendarField.Minute), c, ref value, endOfMonth: false);
            c.Minute = value;
            if (r > 0)
            {
                c.Second = tmUsec = 0;
            }
            if (r < 0 || (r = WithinBounds(ref c)) < 0)
            {
                c.Hour++;
                c.Minute = c.Second = tmUsec = 0;
                continue;
            }
            if (r == 0)
            {
                continue;
            }

            value = c.Second * Usec + tmUsec;
            r = Match(Field(CalendarField.Second), c, ref value, endOfMonth: false);
            tmUsec = value % Usec;
            c.Second = value / Usec;
            if (r < 0 || (r = WithinBounds(ref c)) < 0)
            {
                c.Minute++;
                c.Second = tmUsec = 0;
                continue;
            }
            if (r == 0)
            {
                continue;
            }

            // Not after the start (mktime moved a repeated or skipped hour back, as in Europe/Dublin's
            // negative DST): step an hour on, let mktime pick the DST flag from now on, and search again.
            var cmp = CompareFields(start, c);
            if (cmp == 0)
            {
                cmp = usecOfSecond.CompareTo(tmUsec + 1);
            }
            if (cmp >= 0)
            {
                invalidateDst = true;
                c.Hour++;
                continue;
            }

            start = c;
            usecOfSecond = tmUsec;
            return CalendarElapseStatus.Elapses;
        }
        return CalendarElapseStatus.SearchLimit;
    }

    private static int CompareFields(BrokenDownTime a, BrokenDownTime b)
    {
        var r = a.Year.CompareTo(b.Year);
        if (r == 0)
        {
            r = a.Month.CompareTo(b.Month);
        }
        if (r == 0)
        {
            r = a.Day.CompareTo(b.Day);
        }
        if (r == 0)
        {
            r = a.Hour.CompareTo(b.Hour);
        }
        if (r == 0)
        {
            r = a.Minute.CompareTo(b.Minute);
        }
        return r != 0 ? r : a.Second.CompareTo(b.Second);
    }

    /// <summary>
    /// The earliest value at or after <paramref name="value"/> that the field's list allows:
    /// 1 when it moved, 0 when <paramref name="value"/> already matched, -1 when nothing is left in
    /// this period. Days counted from the end of the month are resolved against <paramref name="tm"/>'s month.
    /// </summary>
    private int Match(CalendarComponent[]? chain, BrokenDownTime tm, ref int value, bool endOfMonth)
    {
        if (chain is null)
        {
            return 0;
        }
        var found = false;
        var best = -1;
        foreach (var c in chain)
        {
            int start, stop;
            if (endOfMonth)
            {
                start = EndOfMonth(tm, c.Start);
                stop = EndOfMonth(tm, c.Stop);
                if (stop > 0)
                {
                    (start, stop) = (stop, start);
                }
            }
            else
            {
                start = c.Start;
                stop = c.Stop;
            }
            if (start >= value)
            {
                if (!found || start < best)
                {
                    best = start;
                    found = true;
                }
            }
            else if (c.Repeat > 0)
            {
                var k = start + c.Repeat * ((value - start + c.Repeat - 1) / c.Repeat);
                if ((!found || k < best) && (stop < 0 || k <= stop))
                {
                    best = k;
                    found = true;
                }
            }
        }
        if (!found)
        {
            return -1;
        }
        var moved = value != best ? 1 : 0;
        value = best;
        return moved;
    }

    /// <summary>The day of month that is <paramref name="day"/> days before the next month's first (-1 if none).</summary>
    private int EndOfMonth(BrokenDownTime tm, int day)
    {
        var t = tm;
        t.Month++;
        t.Day = 1 - day;
        if (!clock.Mktime(ref t, out var seconds) || seconds < 0 || t.Month != tm.Month)
        {
            return -1;
        }
        return t.Day;
    }

    /// <summary>
    /// 1 when <paramref name="tm"/> exists as written; 0 when mktime moved it forward (then
    /// <paramref name="tm"/> is the moved time, its lower fields reset); -1 past 2199, when mktime
    /// fails or when it would move backwards.
    /// </summary>
    private int WithinBounds(ref BrokenDownTime tm)
    {
        if (tm.Year > MaximumYear)
        {
            return -1;
        }
        var t = tm;
        if (!clock.Mktime(ref t, out var seconds) || seconds < 0)
        {
            return -1;
        }
        int cmp;
        if ((cmp = t.Year.CompareTo(tm.Year)) != 0)
        {
            t.Month = 0;
        }
        else if ((cmp = t.Month.CompareTo(tm.Month)) != 0)
        {
            t.Day = 1;
        }
        else if ((cmp = t.Day.CompareTo(tm.Day)) != 0)
        {
            t.Hour = 0;
        }
        else if ((cmp = t.Hour.CompareTo(tm.Hour)) != 0)
        {
            t.Minute = 0;
        }
        else if ((cmp = t.Minute.CompareTo(tm.Minute)) != 0)
        {
            t.Second = 0;
        }
        else
        {
            cmp = t.Second.CompareTo(tm.Second);
        }
        if (cmp < 0)
        {
            return -1;
        }
        if (cmp > 0)
        {
            tm = t;
            return 0;
        }
        return 1;
    }

    private bool MatchesWeekday(BrokenDownTime tm)
    {
        var bits = spec.WeekdayBits;
        if (bits < 0 || bits >= 127)
        {
            return true;
        }
        var t = tm;
        if (!clock.Mktime(ref t, out var seconds) || seconds < 0)
        {
            return false;
        }
        var monday0 = t.WeekDay == 0 ? 6 : t.WeekDay - 1;
        return (bits & (1 << monday0)) != 0;
    }
}
