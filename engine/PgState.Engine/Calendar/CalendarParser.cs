using System.Globalization;

namespace PgState.Engine.Calendar;

/// <summary>
/// Reads a calendar expression the way systemd's calendar_spec_from_string does (same grammar, same
/// acceptance, same normalization and validity rules), and says in words where it is wrong.
/// </summary>
internal sealed class CalendarParser
{
    public const int MicrosecondsPerSecond = 1_000_000;
    private const int MaximumListNesting = 240;
    private const int MinimumYear = 1970;
    private const int MaximumYear = 2199;
    private const string Examples = "e.g. \"*-*-* 02:30:00\", \"Mon..Fri 03:00\", \"Sat,Sun 01:00\" or \"daily\"";

    private static readonly (string Name, int Day)[] WeekdayNames =
    [
        ("Monday", 0), ("Mon", 0), ("Tuesday", 1), ("Tue", 1), ("Wednesday", 2), ("Wed", 2), ("Thursday", 3), ("Thu", 3),
        ("Friday", 4), ("Fri", 4), ("Saturday", 5), ("Sat", 5), ("Sunday", 6), ("Sun", 6),
    ];

    private static readonly string[] WeekdayShortNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    private readonly string text;
    private readonly CalendarTimeZone local;
    private int end;
    private int pos;
    private CalendarParseError? error;

    private int weekdays;
    private readonly CalendarComponent[]?[] fields = new CalendarComponent[]?[6];
    private bool endOfMonth;
    private bool utc;
    private int dst = -1;
    private string? zoneName;
    private CalendarTimeZone? zone;

    private CalendarParser(string text, CalendarTimeZone local)
    {
        this.text = text;
        this.local = local;
        end = text.Length;
    }

    public static CalendarSpec? Parse(string text, CalendarTimeZone local, out CalendarParseError? error)
    {
        var parser = new CalendarParser(text, local);
        var spec = parser.Run();
        error = parser.error;
        return spec;
    }

    private CalendarSpec? Run()
    {
        if (text.Length == 0)
        {
            Fail(0, "the schedule is empty; " + Examples);
            return null;
        }
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsControl(text[i]))
            {
                Fail(i, $"the schedule contains a control character (U+{(int)text[i]:X4})");
                return null;
            }
        }
        if (!ParseTimeZoneSuffix() || !ParseBody())
        {
            if (error is { } e && SpaceHint() is { Length: > 0 } hint && !e.Message.Contains("space", StringComparison.Ordinal))
            {
                error = e with { Message = e.Message + hint };
            }
            return null;
        }
        Normalize();
        if (!Validate())
        {
            return null;
        }
        return new CalendarSpec(text, weekdays, fields, endOfMonth, utc, dst, zoneName, zone, local);
    }

    // ---- time zone suffix -------------------------------------------------------------------

    private bool ParseTimeZoneSuffix()
    {
        if (EndsWithIgnoreCase(" UTC"))
        {
            utc = true;
            end -= 4;
        }
        else
        {
            var found = false;
            for (var j = 0; j <= 1 && !found; j++)
            {
                var name = j == 0 ? local.StandardAbbreviation : local.DaylightAbbreviation;
                if (name.Length == 0 || name.Length >= text.Length || !EndsWithIgnoreCase(name) || text[^(name.Length + 1)] != ' ')
                {
                    continue;
                }
                // The local zone's own abbreviation: standard (0) or daylight (1) time forced.
                dst = j;
                end = text.Length - name.Length - 1;
                found = true;
            }
            if (!found)
            {
                var lastSpace = text.LastIndexOf(' ');
                if (lastSpace >= 0 && CalendarTimeZone.TryFindZone(text[(lastSpace + 1)..], out var named))
                {
                    zoneName = text[(lastSpace + 1)..];
                    zone = named;
                    end = lastSpace;
                }
            }
        }
        if (end == 0)
        {
            return Fail(0, $"there is nothing before the time zone \"{Clip(text.TrimStart())}\"; give a date, a time or a word such as \"daily\" first");
        }
        return true;
    }

    private bool EndsWithIgnoreCase(string suffix)
    {
        if (suffix.Length > text.Length)
        {
            return false;
        }
        var offset = text.Length - suffix.Length;
        for (var i = 0; i < suffix.Length; i++)
        {
            if (char.ToLowerInvariant(Ascii(text[offset + i])) != char.ToLowerInvariant(suffix[i]))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Case folding is ASCII-only, as strcasecmp in the C locale: 'ſ' is not 's'.</summary>
    private static char Ascii(char c) => c < 128 ? c : '\uFFFF';

    private bool StartsWithIgnoreCase(int at, string word)
    {
        if (at + word.Length > end)
        {
            return false;
        }
        for (var i = 0; i < word.Length; i++)
        {
            if (char.ToLowerInvariant(Ascii(text[at + i])) != char.ToLowerInvariant(word[i]))
            {
                return false;
            }
        }
        return true;
    }

    private bool BodyIs(string word) => end == word.Length && StartsWithIgnoreCase(0, word);

    // ---- body ------------------------------------------------------------------------------

    private bool ParseBody()
    {
        if (BodyIs("minutely"))
        {
            SetTime(null, null, 0);
        }
        else if (BodyIs("hourly"))
        {
            SetTime(null, 0, 0);
        }
        else if (BodyIs("daily"))
        {
            SetTime(0, 0, 0);
        }
        else if (BodyIs("monthly"))
        {
            fields[(int)CalendarField.Day] = [CalendarComponent.Value(1)];
            SetTime(0, 0, 0);
        }
        else if (BodyIs("annually") || BodyIs("yearly") || BodyIs("anually"))
        {
            fields[(int)CalendarField.Month] = [CalendarComponent.Value(1)];
            fields[(int)CalendarField.Day] = [CalendarComponent.Value(1)];
            SetTime(0, 0, 0);
        }
        else if (BodyIs("weekly"))
        {
            weekdays = 1;
            SetTime(0, 0, 0);
        }
        else if (BodyIs("quarterly"))
        {
            fields[(int)CalendarField.Month] = [CalendarComponent.Value(1), CalendarComponent.Value(4), CalendarComponent.Value(7), CalendarComponent.Value(10)];
            fields[(int)CalendarField.Day] = [CalendarComponent.Value(1)];
            SetTime(0, 0, 0);
        }
        else if (BodyIs("biannually") || BodyIs("bi-annually") || BodyIs("semiannually") || BodyIs("semi-annually"))
        {
            fields[(int)CalendarField.Month] = [CalendarComponent.Value(1), CalendarComponent.Value(7)];
            fields[(int)CalendarField.Day] = [CalendarComponent.Value(1)];
            SetTime(0, 0, 0);
        }
        else if (ShorthandWithSuffix() is { } word)
        {
            var rest = text[(word.Length + 1)..end];
            return rest.Length == 0 && end == text.Length
                ? Fail(word.Length, "the schedule ends with a space")
                : rest.Length == 0 || rest[0] == ' '
                ? Fail(word.Length, $"\"{word}\" may be followed by one space and a time zone only")
                : Fail(word.Length + 1, $"\"{Clip(rest)}\" after \"{word}\" is not a time zone: write UTC, a zone from {CalendarTimeZone.ZoneInfoDirectory} such as Europe/Paris (names are case-sensitive){LocalAbbreviations()}");
        }
        else
        {
            if (!ParseWeekdays() || !ParseDate(out var complete) || (!complete && !ParseTime()))
            {
                return false;
            }
            if (pos < end)
            {
                return Fail(pos, $"the timestamp after '@' is whole seconds and ends the schedule, found {Describe(pos)}");
            }
        }
        return true;
    }

    private static readonly string[] Shorthands =
    [
        "minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "anually", "quarterly", "semiannually",
        "semi-annually", "biannually", "bi-annually",
    ];

    /// <summary>"daily EDT": a shorthand followed by what systemd did not take as a zone.</summary>
    private string? ShorthandWithSuffix()
    {
        foreach (var word in Shorthands)
        {
            if (end > word.Length && text[word.Length] == ' ' && StartsWithIgnoreCase(0, word))
            {
                return text[..word.Length];
            }
        }
        return null;
    }

    private string LocalAbbreviations()
    {
        var names = new[] { local.StandardAbbreviation, local.DaylightAbbreviation }.Where(n => n.Length > 0 && n != "UTC").Distinct(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "" : $", or this host's {string.Join(" or ", names)}";
    }

    private void SetTime(int? hour, int? minute, int second)
    {
        fields[(int)CalendarField.Hour] = hour is { } h ? [CalendarComponent.Value(h)] : null;
        fields[(int)CalendarField.Minute] = minute is { } m ? [CalendarComponent.Value(m)] : null;
        fields[(int)CalendarField.Second] = [CalendarComponent.Value(second * MicrosecondsPerSecond)];
    }

    private char At(int i) => i < end ? text[i] : '\0';

    private void SkipSpaces()
    {
        while (At(pos) == ' ')
        {
            pos++;
        }
    }

    private bool ParseWeekdays()
    {
        var rangeStart = -1;
        var first = true;
        var rangeColumn = 0;
        while (true)
        {
            var day = -1;
            foreach (var (name, number) in WeekdayNames)
            {
                if (!StartsWithIgnoreCase(pos, name))
                {
                    continue;
                }
                var after = At(pos + name.Length);
                if (after is not ('\0' or '-' or '.' or ',' or ' '))
                {
                    return Fail(pos + name.Length, $"the weekday \"{text.Substring(pos, name.Length)}\" is followed by {Describe(pos + name.Length)}; separate weekdays with ',' or '..' and put a space before the date or time");
                }
                weekdays |= 1 << number;
                if (rangeStart >= 0)
                {
                    if (rangeStart > number)
                    {
                        return Fail(rangeColumn, $"the weekday range {WeekdayShortNames[rangeStart]}..{WeekdayShortNames[number]} runs backwards; weeks start on Monday, so write e.g. \"{WeekdayShortNames[number]}..{WeekdayShortNames[rangeStart]}\" or list the days (\"{WeekdayShortNames[rangeStart]}..Sun,Mon..{WeekdayShortNames[number]}\")");
                    }
                    for (var j = rangeStart + 1; j < number; j++)
                    {
                        weekdays |= 1 << j;
                    }
                }
                day = number;
                pos += name.Length;
                break;
            }
            if (day < 0)
            {
                return first || Fail(pos, $"expected a weekday (Mon, Tue, Wed, Thu, Fri, Sat, Sun) after '{text[pos - 1]}', found {Describe(pos)}");
            }
            var c = At(pos);
            if (c == '\0')
            {
                return true;
            }
            if (c == ' ')
            {
                SkipSpaces();
                return true;
            }
            if (c == '.')
            {
                if (rangeStart >= 0)
                {
                    return Fail(pos, "a weekday range cannot go on past its last day (\"Mon..Wed..Fri\"); separate ranges with ','");
                }
                if (At(pos + 1) != '.')
                {
                    return Fail(pos, "a single '.' after a weekday; a range of weekdays is written with two dots, e.g. \"Mon..Fri\"");
                }
                rangeStart = day;
                rangeColumn = pos;
                pos += 2;
            }
            else if (c == '-')
            {
                if (rangeStart >= 0)
                {
                    return Fail(pos, "a weekday range cannot go on past its last day (\"Mon-Wed-Fri\"); separate ranges with ','");
                }
                rangeStart = day;
                rangeColumn = pos;
                pos += 1;
            }
            else if (c == ',')
            {
                rangeStart = -1;
                pos += 1;
            }
            if (At(pos) is '\0' or ' ')
            {
                SkipSpaces();
                return rangeStart < 0 || Fail(rangeColumn, $"the weekday range starting with {WeekdayShortNames[rangeStart]} has no last day");
            }
            first = false;
        }
    }

    /// <summary>The date part, if any; <paramref name="complete"/> when an @timestamp fixed the time too.</summary>
    private bool ParseDate(out bool complete)
    {
        complete = false;
        if (At(pos) == '\0')
        {
            return true;
        }
        if (At(pos) == '@')
        {
            complete = true;
            return ParseTimestamp();
        }
        var start = pos;
        if (!ParseChain(false, ClassifyFirst(), out var first))
        {
            return false;
        }
        if (At(pos) is '\0' or ':')
        {
            // That was an hour: there is no date.
            pos = start;
            return true;
        }
        var eomColumn = pos;
        if (At(pos) == '~')
        {
            endOfMonth = true;
        }
        else if (At(pos) != '-')
        {
            return Fail(pos, $"expected '-' between the parts of a date (year-month-day) or ':' between hour and minute, found {Describe(pos)}");
        }
        pos++;
        if (!ParseChain(false, CalendarField.Month, out var second))
        {
            return false;
        }
        if (At(pos) is '\0' or ' ')
        {
            SkipSpaces();
            fields[(int)CalendarField.Month] = first;
            fields[(int)CalendarField.Day] = second;
            return true;
        }
        if (endOfMonth)
        {
            return Fail(eomColumn, "'~' (days counted from the end of the month) goes between the month and the day only, as in \"*-02~03\" (third last day of February)");
        }
        if (At(pos) == '~')
        {
            endOfMonth = true;
        }
        else if (At(pos) != '-')
        {
            return Fail(pos, $"expected '-' or '~' between month and day, or a space after the date, found {Describe(pos)}");
        }
        pos++;
        if (!ParseChain(false, CalendarField.Day, out var third))
        {
            return false;
        }
        if (At(pos) is not ('\0' or ' '))
        {
            return Fail(pos, $"expected a space between the date and the time, found {Describe(pos)}");
        }
        SkipSpaces();
        fields[(int)CalendarField.Year] = first;
        fields[(int)CalendarField.Month] = second;
        fields[(int)CalendarField.Day] = third;
        return true;
    }

    /// <summary>Whether the first number is a year, a month or an hour, for messages only (systemd decides later).</summary>
    private CalendarField ClassifyFirst()
    {
        var dashes = 0;
        for (var i = pos; i < end && text[i] != ' '; i++)
        {
            if (text[i] == ':')
            {
                return dashes == 0 ? CalendarField.Hour : dashes == 1 ? CalendarField.Month : CalendarField.Year;
            }
            if (text[i] is '-' or '~')
            {
                dashes++;
            }
        }
        return dashes == 1 ? CalendarField.Month : dashes >= 2 ? CalendarField.Year : CalendarField.Hour;
    }

    /// <summary>@SECONDS: a single UTC instant (strtoul, so a sign or leading spaces are accepted, as systemd does).</summary>
    private bool ParseTimestamp()
    {
        var at = pos;
        pos++;
        var p = pos;
        while (At(p) == ' ')
        {
            p++;
        }
        var negative = false;
        if (At(p) is '+' or '-')
        {
            negative = At(p) == '-';
            p++;
        }
        if (!char.IsAsciiDigit(At(p)))
        {
            return Fail(at, "'@' must be followed by a number of seconds since 1970-01-01 00:00:00 UTC, e.g. \"@1767225600\"");
        }
        ulong value = 0;
        var overflow = false;
        while (char.IsAsciiDigit(At(p)))
        {
            var digit = (ulong)(At(p) - '0');
            if (value > (ulong.MaxValue - digit) / 10)
            {
                overflow = true;
            }
            value = unchecked(value * 10 + digit);
            p++;
        }
        if (overflow)
        {
            return Fail(at, "the timestamp after '@' is too large");
        }
        // strtoul negates a '-' number modulo 2^64, and systemd reads the result as a time_t.
        var seconds = negative ? unchecked(-(long)value) : unchecked((long)value);
        var days = CivilTime.FloorDiv(seconds, CivilTime.SecondsPerDay);
        var secondOfDay = (int)(seconds - days * CivilTime.SecondsPerDay);
        CivilTime.FromDays(days, out var year, out var month0, out var day, out _);
        if (year > int.MaxValue || year - 1900 < int.MinValue)
        {
            return Fail(at, "the timestamp after '@' is too large");
        }
        fields[(int)CalendarField.Year] = [CalendarComponent.Value((int)year, at + 1)];
        fields[(int)CalendarField.Month] = [CalendarComponent.Value(month0 + 1, at + 1)];
        fields[(int)CalendarField.Day] = [CalendarComponent.Value(day, at + 1)];
        fields[(int)CalendarField.Hour] = [CalendarComponent.Value(secondOfDay / 3600, at + 1)];
        fields[(int)CalendarField.Minute] = [CalendarComponent.Value(secondOfDay / 60 % 60, at + 1)];
        fields[(int)CalendarField.Second] = [CalendarComponent.Value(secondOfDay % 60 * MicrosecondsPerSecond, at + 1)];
        utc = true;
        pos = p;
        return true;
    }

    private bool ParseTime()
    {
        if (At(pos) == '\0')
        {
            SetTime(0, 0, 0);
            return true;
        }
        if (!ParseChain(false, CalendarField.Hour, out var hour))
        {
            return false;
        }
        if (At(pos) != ':')
        {
            return Fail(pos, $"expected ':' between hour and minute, found {Describe(pos)}");
        }
        pos++;
        if (!ParseChain(false, CalendarField.Minute, out var minute))
        {
            return false;
        }
        CalendarComponent[]? second;
        if (At(pos) == '\0')
        {
            second = [CalendarComponent.Value(0)];
        }
        else if (At(pos) != ':')
        {
            return Fail(pos, $"expected ':' before the seconds, or the end of the schedule, found {Describe(pos)}{ZoneHint(pos)}");
        }
        else
        {
            pos++;
            if (!ParseChain(true, CalendarField.Second, out second))
            {
                return false;
            }
            if (At(pos) != '\0')
            {
                return Fail(pos, $"found {Describe(pos)} after the seconds, where the schedule should end{ZoneHint(pos)}");
            }
        }
        fields[(int)CalendarField.Hour] = hour;
        fields[(int)CalendarField.Minute] = minute;
        fields[(int)CalendarField.Second] = second;
        return true;
    }

    /// <summary>A list of values, ranges and repetitions, or '*' (null: any value; for seconds, every whole second).</summary>
    private bool ParseChain(bool usec, CalendarField field, out CalendarComponent[]? chain)
    {
        chain = null;
        if (At(pos) == '*')
        {
            if (At(pos + 1) == '/')
            {
                return Fail(pos, "'*/N' is not systemd syntax: a repetition needs a start value, e.g. \"0/15\" (every 15 starting at 0)");
            }
            pos++;
            if (usec)
            {
                chain = [new CalendarComponent(0, -1, MicrosecondsPerSecond, pos)];
            }
            return true;
        }
        var list = new List<CalendarComponent>();
        for (var nesting = 0; ; nesting++)
        {
            var column = pos;
            if (nesting > MaximumListNesting)
            {
                return Fail(pos, $"a list may hold at most {MaximumListNesting + 1} values");
            }
            if (!ParseDecimal(usec, field, out var start))
            {
                return false;
            }
            var stop = -1;
            var repeat = 0;
            if (At(pos) == '.' && At(pos + 1) == '.')
            {
                pos += 2;
                if (!ParseDecimal(usec, field, out stop))
                {
                    return false;
                }
                repeat = usec ? MicrosecondsPerSecond : 1;
            }
            if (At(pos) == '/')
            {
                pos++;
                var repeatColumn = pos;
                if (!ParseDecimal(usec, field, out repeat))
                {
                    return false;
                }
                if (repeat == 0)
                {
                    return Fail(repeatColumn, "a repetition of 0 never advances; use /1 or more");
                }
            }
            else
            {
                if (start > int.MaxValue - repeat)
                {
                    return Fail(column, $"the {Name(field)} is too large");
                }
                if (usec && stop >= 0 && start + repeat > stop)
                {
                    return Fail(column, $"the seconds range {Seconds(start)}..{Seconds(stop)} is shorter than its default step of one second; give a step, e.g. \"/0.5\"");
                }
            }
            if (At(pos) is not ('\0' or ' ' or ',' or '-' or '~' or ':'))
            {
                var found = Describe(pos);
                return At(pos) == '.' && !usec
                    ? Fail(pos, $"the {Name(field)} must be a whole number (only seconds may have a fraction), found {found}")
                    : Fail(pos, $"found {found} after the {Name(field)}, where ',', '..', '/' or the next part was expected");
            }
            list.Add(new CalendarComponent(start, stop, repeat, column + 1));
            if (At(pos) != ',')
            {
                break;
            }
            pos++;
        }
        chain = [.. list];
        return true;
    }

    /// <summary>A decimal number (strtoul), with up to six decimals for seconds (rounded on the seventh).</summary>
    private bool ParseDecimal(bool usec, CalendarField field, out int value)
    {
        value = 0;
        var column = pos;
        if (!char.IsAsciiDigit(At(pos)))
        {
            return Fail(pos, column == 0 && At(0) == ' '
                ? "the schedule starts with a space"
                : column == 0
                ? $"{Word(pos)} is not a weekday, a date, a time or one of minutely, hourly, daily, weekly, monthly, quarterly, semiannually, yearly; {Examples}"
                : $"expected a number or '*' for the {Name(field)}, found {Describe(pos)}");
        }
        ulong number = 0;
        var overflow = false;
        while (char.IsAsciiDigit(At(pos)))
        {
            var digit = (ulong)(At(pos) - '0');
            if (number > (ulong.MaxValue - digit) / 10)
            {
                overflow = true;
            }
            number = unchecked(number * 10 + digit);
            pos++;
        }
        if (overflow || (usec && number > ulong.MaxValue / MicrosecondsPerSecond))
        {
            return Fail(column, $"{Clip(text[column..pos])} is too large for the {Name(field)}");
        }
        if (usec)
        {
            number *= MicrosecondsPerSecond;
            if (At(pos) == '.' && At(pos + 1) != '.')
            {
                pos++;
                if (!char.IsAsciiDigit(At(pos)))
                {
                    return Fail(pos, $"expected digits after the decimal point of the seconds, found {Describe(pos)}");
                }
                uint fraction = 0;
                for (var i = 0; i < 6; i++)
                {
                    if (char.IsAsciiDigit(At(pos)))
                    {
                        fraction = fraction * 10 + (uint)(At(pos) - '0');
                        pos++;
                    }
                    else
                    {
                        fraction *= 10;
                    }
                }
                if (At(pos) is >= '5' and <= '9')
                {
                    fraction++;
                }
                while (char.IsAsciiDigit(At(pos)))
                {
                    pos++;
                }
                number += fraction;
            }
        }
        if (number > int.MaxValue)
        {
            return Fail(column, $"{Clip(text[column..pos])} is too large for the {Name(field)}");
        }
        value = (int)number;
        return true;
    }

    // ---- normalization and validity ---------------------------------------------------------

    private void Normalize()
    {
        if (zoneName == "UTC")
        {
            utc = true;
            zoneName = null;
            zone = null;
        }
        if (weekdays <= 0 || weekdays >= 127)
        {
            weekdays = -1;
        }
        if (endOfMonth && fields[(int)CalendarField.Day] is null)
        {
            endOfMonth = false;
        }
        if (fields[(int)CalendarField.Year] is { } years)
        {
            // Two-digit years: 0–69 are 2000–2069, 70–99 are 1970–1999.
            for (var i = 0; i < years.Length; i++)
            {
                var c = years[i];
                years[i] = c with { Start = FixYear(c.Start), Stop = FixYear(c.Stop) };
            }
        }
        for (var f = 0; f < fields.Length; f++)
        {
            if (fields[f] is { } chain)
            {
                fields[f] = NormalizeChain(chain);
            }
        }
    }

    private static int FixYear(int y) => y is >= 0 and < 70 ? y + 2000 : y is >= 70 and < 100 ? y + 1900 : y;

    private static CalendarComponent[] NormalizeChain(CalendarComponent[] chain)
    {
        for (var i = 0; i < chain.Length; i++)
        {
            var (start, stop, repeat, column) = chain[i];
            // A range's end is cut to the last value its step reaches; a step that cannot fire even
            // once, or a range of one value, becomes a plain value.
            if (stop > start && repeat > 0)
            {
                stop -= (stop - start) % repeat;
            }
            if ((stop > start && repeat > 0 && start + repeat > stop) || start == stop)
            {
                repeat = 0;
                stop = -1;
            }
            chain[i] = new CalendarComponent(start, stop, repeat, column);
        }
        if (chain.Length <= 1)
        {
            return chain;
        }
        var sorted = chain.OrderBy(c => c.Start).ThenBy(c => c.Stop).ThenBy(c => c.Repeat).ToList();
        var unique = new List<CalendarComponent>(sorted.Count);
        foreach (var c in sorted)
        {
            if (unique.Count == 0 || unique[^1].Start != c.Start || unique[^1].Stop != c.Stop || unique[^1].Repeat != c.Repeat)
            {
                unique.Add(c);
            }
        }
        return [.. unique];
    }

    private bool Validate()
    {
        // systemd only says "invalid"; report the leftmost offending element.
        (int Column, string Message)? worst = null;
        for (var f = 0; f < fields.Length; f++)
        {
            if (fields[f] is not { } chain)
            {
                continue;
            }
            var field = (CalendarField)f;
            var (from, to) = field switch
            {
                CalendarField.Year => (MinimumYear, MaximumYear),
                CalendarField.Month => (1, 12),
                CalendarField.Day => (1, 31),
                CalendarField.Hour => (0, 23),
                CalendarField.Minute => (0, 59),
                _ => (0, 60 * MicrosecondsPerSecond - 1),
            };
            var eom = field == CalendarField.Day && endOfMonth;
            if (eom)
            {
                to -= 3;
            }
            foreach (var c in chain)
            {
                if (Invalid(c, field, from, to, eom) is { } message && (worst is null || c.Column < worst.Value.Column))
                {
                    worst = (c.Column, message);
                }
            }
        }
        if (worst is { } w)
        {
            error = new CalendarParseError(Math.Max(w.Column, 1), w.Message);
            return false;
        }
        return true;
    }

    private static string? Invalid(CalendarComponent c, CalendarField field, int from, int to, bool eom)
    {
        var name = Name(field);
        string V(int v) => field == CalendarField.Second ? Seconds(v) : v.ToString(CultureInfo.InvariantCulture);
        var range = $"{V(from)}-{V(to)}";
        if (c.Start < from || c.Start > to)
        {
            return eom
                ? $"day ~{c.Start} counts from the end of the month and must be ~1 to ~28"
                : field == CalendarField.Year && c.Column > 0 && c.Start < MinimumYear
                    ? $"year {c.Start} is out of range ({range}); calendar events start in 1970"
                    : $"{name} {V(c.Start)} is out of range ({range})";
        }
        if (c.Repeat > to - from)
        {
            return $"the repetition /{V(c.Repeat)} of the {name} is longer than the whole {name} range ({range})";
        }
        if (c.Stop >= 0)
        {
            if (c.Stop < from || c.Stop > to)
            {
                return eom ? $"day ~{c.Stop} counts from the end of the month and must be ~1 to ~28" : $"{name} {V(c.Stop)} is out of range ({range})";
            }
            if (c.Start + c.Repeat > c.Stop)
            {
                return c.Stop < c.Start
                    ? $"the {name} range {V(c.Start)}..{V(c.Stop)} runs backwards; write the smaller value first"
                    : $"the repetition /{V(c.Repeat)} does not fit in the {name} range {V(c.Start)}..{V(c.Stop)}";
            }
        }
        else if (eom && c.Start - c.Repeat < from)
        {
            return $"~{c.Start}/{c.Repeat} would repeat past the end of the month; use a smaller step";
        }
        else if (!eom && c.Start + c.Repeat > to)
        {
            return $"{name} {V(c.Start)}/{V(c.Repeat)} never repeats within {range}; remove the /{V(c.Repeat)} or use a smaller step";
        }
        return null;
    }

    // ---- messages ---------------------------------------------------------------------------

    private bool Fail(int index, string message)
    {
        error ??= new CalendarParseError(index + 1, message);
        return false;
    }

    private static string Name(CalendarField field) => field switch
    {
        CalendarField.Year => "year",
        CalendarField.Month => "month",
        CalendarField.Day => "day",
        CalendarField.Hour => "hour",
        CalendarField.Minute => "minute",
        _ => "seconds",
    };

    internal static string Seconds(int usec)
    {
        var whole = (usec / MicrosecondsPerSecond).ToString("00", CultureInfo.InvariantCulture);
        var fraction = usec % MicrosecondsPerSecond;
        return fraction == 0 ? whole : whole + "." + fraction.ToString("000000", CultureInfo.InvariantCulture).TrimEnd('0');
    }

    private string Describe(int i)
    {
        if (i >= end)
        {
            return "the end of the schedule";
        }
        var c = text[i];
        return c == ' ' ? "a space" : c > 127 || char.IsWhiteSpace(c) ? $"the character U+{(int)c:X4}" : $"'{c}'";
    }

    /// <summary>Quotes of the input stay short, whatever its length.</summary>
    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private string Word(int i)
    {
        var stop = i;
        while (stop < end && text[stop] != ' ')
        {
            stop++;
        }
        return $"\"{Clip(text[i..stop])}\"";
    }

    /// <summary>When the rest looks like a time zone name that systemd did not find, say so.</summary>
    private string ZoneHint(int i)
    {
        if (At(i) != ' ')
        {
            return "";
        }
        var rest = text[(i + 1)..end];
        if (rest.Length > 1 && rest[0] is ('+' or '-') && rest[1..].All(char.IsAsciiDigit))
        {
            return $" (a UTC offset such as \"{Clip(rest)}\" is not a time zone here: write UTC or a zone name such as Europe/Paris)";
        }
        if (rest.Length == 0 || rest.Contains(' ', StringComparison.Ordinal) || !rest.Any(char.IsAsciiLetter))
        {
            return "";
        }
        return $" (\"{Clip(rest)}\" is not a time zone in {CalendarTimeZone.ZoneInfoDirectory}: zone names are case-sensitive, e.g. Europe/Paris, America/New_York or UTC)";
    }

    /// <summary>Spaces systemd does not skip, named, since they are hard to see in a manifest.</summary>
    private string SpaceHint()
    {
        if (text[0] == ' ')
        {
            return " (the schedule starts with a space)";
        }
        if (end > 0 && text[end - 1] == ' ')
        {
            return end == text.Length ? " (the schedule ends with a space)" : " (there is more than one space before the time zone)";
        }
        return "";
    }
}
