namespace PgState.Engine.Calendar;

/// <summary>
/// A POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"), as the footer of a TZif file or the TZ variable
/// carries it, read and evaluated the way glibc's tzset does: the rules of the UTC year of the instant,
/// DST start given in standard time and DST end in daylight time, southern-hemisphere rules when the
/// start falls after the end.
/// </summary>
internal sealed class PosixTimeZoneRule
{
    private enum RuleKind { JulianZeroBased, JulianOneBased, MonthWeekDay }

    private readonly record struct ChangeRule(RuleKind Kind, int Day, int Week, int Month, int Seconds);

    public string StandardName { get; }
    public string DaylightName { get; }
    public int StandardOffset { get; }
    public int DaylightOffset { get; }
    public bool HasDaylightTime { get; }
    private readonly ChangeRule start;
    private readonly ChangeRule end;

    private PosixTimeZoneRule(string standardName, int standardOffset, string daylightName, int daylightOffset, bool hasDaylight, ChangeRule start, ChangeRule end)
    {
        StandardName = standardName;
        StandardOffset = standardOffset;
        DaylightName = daylightName;
        DaylightOffset = daylightOffset;
        HasDaylightTime = hasDaylight;
        this.start = start;
        this.end = end;
    }

    public static PosixTimeZoneRule? TryParse(string text)
    {
        var p = 0;
        if (!TryName(text, ref p, out var standardName) || !TryOffset(text, ref p, required: true, out var standardOffset))
        {
            return null;
        }
        if (p == text.Length)
        {
            return new PosixTimeZoneRule(standardName, standardOffset, standardName, standardOffset, false, default, default);
        }
        if (!TryName(text, ref p, out var daylightName))
        {
            return null;
        }
        var daylightOffset = standardOffset + 3600;
        if (p < text.Length && text[p] != ',' && !TryOffset(text, ref p, required: false, out daylightOffset))
        {
            return null;
        }
        ChangeRule startRule, endRule;
        if (p == text.Length || (text[p] == ',' && p + 1 == text.Length))
        {
            // glibc takes the rules of the "posixrules" zone here (America/New_York on Debian): the US rules.
            startRule = new ChangeRule(RuleKind.MonthWeekDay, 0, 2, 3, 7200);
            endRule = new ChangeRule(RuleKind.MonthWeekDay, 0, 1, 11, 7200);
        }
        else if (!(text[p] == ',' && TryRule(text, ref p, out startRule) && p < text.Length && text[p] == ',' && TryRule(text, ref p, out endRule)) || p != text.Length)
        {
            return null;
        }
        return new PosixTimeZoneRule(standardName, standardOffset, daylightName, daylightOffset, true, startRule, endRule);
    }

    /// <summary>UTC offset (seconds east), DST flag and abbreviation in force at <paramref name="t"/>.</summary>
    public (int Offset, bool IsDst, string Abbreviation) Lookup(long t)
    {
        if (!HasDaylightTime)
        {
            return (StandardOffset, false, StandardName);
        }
        CivilTime.FromDays(CivilTime.FloorDiv(t, CivilTime.SecondsPerDay), out var year, out _, out _, out _);
        var dstStarts = Change(start, year) - StandardOffset;
        var dstEnds = Change(end, year) - DaylightOffset;
        var isDst = dstStarts > dstEnds ? t < dstEnds || t >= dstStarts : t >= dstStarts && t < dstEnds;
        return isDst ? (DaylightOffset, true, DaylightName) : (StandardOffset, false, StandardName);
    }

    /// <summary>The local wall-clock moment of a rule in <paramref name="year"/>, as seconds since the epoch read as UTC.</summary>
    private static long Change(ChangeRule rule, long year)
    {
        var t = CivilTime.DaysToYear(year) * CivilTime.SecondsPerDay;
        switch (rule.Kind)
        {
            case RuleKind.JulianOneBased:
                t += (rule.Day - 1) * CivilTime.SecondsPerDay;
                if (rule.Day >= 60 && CivilTime.IsLeap(year))
                {
                    t += CivilTime.SecondsPerDay;
                }
                break;
            case RuleKind.JulianZeroBased:
                t += rule.Day * CivilTime.SecondsPerDay;
                break;
            default:
                var firstOfMonth = CivilTime.DaysToYear(year) + CivilTime.DaysBefore(year, rule.Month - 1);
                var day = (int)CivilTime.FloorMod(rule.Day - CivilTime.WeekDay(firstOfMonth), 7);
                var length = CivilTime.DaysInMonth(year, rule.Month - 1);
                for (var i = 1; i < rule.Week && day + 7 < length; i++)
                {
                    day += 7;
                }
                t = (firstOfMonth + day) * CivilTime.SecondsPerDay;
                break;
        }
        return t + rule.Seconds;
    }

    private static bool TryName(string s, ref int p, out string name)
    {
        name = "";
        var begin = p;
        if (p < s.Length && s[p] == '<')
        {
            p++;
            var inner = p;
            while (p < s.Length && (char.IsAsciiLetterOrDigit(s[p]) || s[p] == '+' || s[p] == '-'))
            {
                p++;
            }
            if (p >= s.Length || s[p] != '>' || p - inner < 3)
            {
                p = begin;
                return false;
            }
            name = s[inner..p];
            p++;
            return true;
        }
        while (p < s.Length && char.IsAsciiLetter(s[p]))
        {
            p++;
        }
        if (p - begin < 3)
        {
            p = begin;
            return false;
        }
        name = s[begin..p];
        return true;
    }

    /// <summary>[+-]hh[:mm[:ss]] west of UTC, returned as seconds east (glibc clamps hh to 24, mm and ss to 59).</summary>
    private static bool TryOffset(string s, ref int p, bool required, out int offset)
    {
        offset = 0;
        var sign = 1;
        if (p < s.Length && (s[p] == '+' || s[p] == '-'))
        {
            sign = s[p] == '-' ? -1 : 1;
            p++;
        }
        else if (required && (p >= s.Length || !char.IsAsciiDigit(s[p])))
        {
            return false;
        }
        if (!TryClock(s, ref p, out var hh, out var mm, out var ss))
        {
            return false;
        }
        offset = -sign * (Math.Min(hh, 24) * 3600 + Math.Min(mm, 59) * 60 + Math.Min(ss, 59));
        return true;
    }

    private static bool TryRule(string s, ref int p, out ChangeRule rule)
    {
        rule = default;
        p++; // the comma
        RuleKind kind;
        int day = 0, week = 0, month = 0;
        if (p < s.Length && s[p] == 'J')
        {
            p++;
            if (!TryNumber(s, ref p, out day) || day < 1 || day > 365)
            {
                return false;
            }
            kind = RuleKind.JulianOneBased;
        }
        else if (p < s.Length && s[p] == 'M')
        {
            p++;
            if (!TryNumber(s, ref p, out month) || month < 1 || month > 12 || !Expect(s, ref p, '.')
                || !TryNumber(s, ref p, out week) || week < 1 || week > 5 || !Expect(s, ref p, '.')
                || !TryNumber(s, ref p, out day) || day > 6)
            {
                return false;
            }
            kind = RuleKind.MonthWeekDay;
        }
        else
        {
            if (!TryNumber(s, ref p, out day) || day > 365)
            {
                return false;
            }
            kind = RuleKind.JulianZeroBased;
        }
        var seconds = 7200;
        if (p < s.Length && s[p] == '/')
        {
            p++;
            var negative = p < s.Length && s[p] == '-';
            if (negative || (p < s.Length && s[p] == '+'))
            {
                p++;
            }
            if (!TryClock(s, ref p, out var hh, out var mm, out var ss))
            {
                return false;
            }
            seconds = (negative ? -1 : 1) * (hh * 3600 + mm * 60 + ss);
        }
        rule = new ChangeRule(kind, day, week, month, seconds);
        return true;
    }

    private static bool TryClock(string s, ref int p, out int hh, out int mm, out int ss)
    {
        mm = ss = 0;
        if (!TryNumber(s, ref p, out hh))
        {
            return false;
        }
        if (p + 1 < s.Length && s[p] == ':' && char.IsAsciiDigit(s[p + 1]))
        {
            p++;
            TryNumber(s, ref p, out mm);
            if (p + 1 < s.Length && s[p] == ':' && char.IsAsciiDigit(s[p + 1]))
            {
                p++;
                TryNumber(s, ref p, out ss);
            }
        }
        return true;
    }

    private static bool TryNumber(string s, ref int p, out int value)
    {
        value = 0;
        var begin = p;
        while (p < s.Length && char.IsAsciiDigit(s[p]) && p - begin < 6)
        {
            value = value * 10 + (s[p] - '0');
            p++;
        }
        return p > begin;
    }

    private static bool Expect(string s, ref int p, char c)
    {
        if (p < s.Length && s[p] == c)
        {
            p++;
            return true;
        }
        return false;
    }
}
