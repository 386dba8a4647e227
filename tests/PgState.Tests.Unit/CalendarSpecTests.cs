using System.Globalization;
using PgState.Engine.Calendar;

namespace PgState.Tests.Unit;

/// <summary>
/// CalendarSpec without any process: grammar, normalized forms, errors, next elapses across DST
/// changes, leap years and days counted from the end of the month. Expected values are what
/// systemd-analyze calendar (systemd 252) answers for the same TZ and --base-time; the zones are read
/// from /usr/share/zoneinfo (tzdata).
/// </summary>
public class CalendarSpecTests
{
    private static readonly CalendarTimeZone Utc = CalendarTimeZone.FromTzVariable(":UTC");
    private static readonly CalendarTimeZone Paris = CalendarTimeZone.FromTzVariable(":Europe/Paris");

    private static DateTimeOffset At(string instant) => DateTimeOffset.Parse(instant, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static CalendarSpec Parse(string text, CalendarTimeZone? local = null)
    {
        Assert.True(CalendarSpec.TryParse(text, local ?? Utc, out var spec, out string? error), error);
        return spec;
    }

    private static string[] Elapses(CalendarSpec spec, string after, int count) =>
        [.. spec.NextElapses(At(after), count).Select(t => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture))];

    [Theory]
    // The schedules of the issues.
    [InlineData("*-*-* 02:30:00", "*-*-* 02:30:00")]
    [InlineData("Mon..Fri *-*-* 03:00", "Mon..Fri *-*-* 03:00:00")]
    [InlineData("weekly", "Mon *-*-* 00:00:00")]
    [InlineData("Sat,Sun 01:00", "Sat,Sun *-*-* 01:00:00")]
    [InlineData("*-*-1/2 4:00:00", "*-*-01/2 04:00:00")]
    [InlineData("2026-11-* 02:00 Europe/Paris", "2026-11-* 02:00:00 Europe/Paris")]
    [InlineData("hourly", "*-*-* *:00:00")]
    [InlineData("*:0/15", "*-*-* *:00/15:00")]
    // Shorthands, in any case.
    [InlineData("minutely", "*-*-* *:*:00")]
    [InlineData("DAILY", "*-*-* 00:00:00")]
    [InlineData("monthly", "*-*-01 00:00:00")]
    [InlineData("yearly", "*-01-01 00:00:00")]
    [InlineData("annually", "*-01-01 00:00:00")]
    [InlineData("quarterly", "*-01,04,07,10-01 00:00:00")]
    [InlineData("semiannually", "*-01,07-01 00:00:00")]
    [InlineData("semi-annually", "*-01,07-01 00:00:00")]
    [InlineData("daily UTC", "*-*-* 00:00:00 UTC")]
    [InlineData("weekly Pacific/Auckland", "Mon *-*-* 00:00:00 Pacific/Auckland")]
    // Weekday lists and ranges: runs of three or more print as ranges, the whole week as nothing.
    [InlineData("Sat,Thu,Mon..Wed,Sat..Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00")]
    [InlineData("Sat,Thu,Mon-Wed,Sat-Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00")]
    [InlineData("Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03")]
    [InlineData("Mon..Sun", "*-*-* 00:00:00")]
    [InlineData("Wed, 17:48", "Wed *-*-* 17:48:00")]
    [InlineData("Wednesday,", "Wed *-*-* 00:00:00")]
    [InlineData("mon,fri *-1/2-1,3 *:30:45", "Mon,Fri *-01/2-01,03 *:30:45")]
    // Dates: two parts are month-day, two-digit years are 1970-2069.
    [InlineData("10-15", "*-10-15 00:00:00")]
    [InlineData("Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00")]
    [InlineData("93..00-*-*", "1993..2000-*-* 00:00:00")]
    [InlineData("2003-02..04-05", "2003-02..04-05 00:00:00")]
    [InlineData("*-*-* ", "*-*-* 00:00:00")]
    // Lists, ranges and repetitions: sorted, duplicates dropped, a range's end cut to its last step.
    [InlineData("12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00")]
    [InlineData("*:20..39/5", "*-*-* *:20..35/5:00")]
    [InlineData("*:05..10/6", "*-*-* *:05:00")]
    [InlineData("*:05..05", "*-*-* *:05:00")]
    // Days from the end of the month.
    [InlineData("*-02~03", "*-02~03 00:00:00")]
    [InlineData("Mon *-05~07/1", "Mon *-05~07/1 00:00:00")]
    [InlineData("*-*~05,3 ", "*-*~03,05 00:00:00")]
    [InlineData("*-*~* 00:00:00", "*-*-* 00:00:00")]
    // Seconds with fractions, rounded to microseconds.
    [InlineData("05:40:23.4200004/3.1700005", "*-*-* 05:40:23.420000/3.170001")]
    [InlineData("00:00:1.125..2.125", "*-*-* 00:00:01.125000..02.125000")]
    [InlineData("*-*-* 00:00:0.9999996", "*-*-* 00:00:01")]
    [InlineData("*:*:*", "*-*-* *:*:*")]
    [InlineData("00:00:20..40/1", "*-*-* 00:00:20..40")]
    // systemd 252 prints '*' for seconds as soon as one element is every second from 0, other elements or not.
    [InlineData("*:4,30:0/1,3,5", "*-*-* *:04,30:*")]
    [InlineData("*:*:0/1,30.5", "*-*-* *:*:*")]
    // UNIX timestamps are UTC.
    [InlineData("@1493187147", "2017-04-26 06:12:27 UTC")]
    [InlineData("@ 5", "1970-01-01 00:00:05 UTC")]
    [InlineData("2015-10-25 01:00:00 uTc", "2015-10-25 01:00:00 UTC")]
    public void Expressions_normalize_as_systemd_analyze_prints_them(string text, string normalized)
    {
        var spec = Parse(text);
        Assert.Equal(normalized, spec.Normalized);
        // The normal form reads back to itself.
        Assert.Equal(normalized, Parse(normalized).Normalized);
    }

    [Theory]
    [InlineData("daily cet", "*-*-* 00:00:00 CET")]
    [InlineData("12:00 CEST", "*-*-* 12:00:00 CEST")]
    [InlineData("daily GMT", "*-*-* 00:00:00 GMT")]
    public void The_local_zones_abbreviations_force_standard_or_daylight_time(string text, string normalized) =>
        Assert.Equal(normalized, Parse(text, Paris).Normalized);

    [Theory]
    [InlineData("", 1, "the schedule is empty")]
    [InlineData("every day", 1, "\"every\" is not a weekday, a date, a time")]
    [InlineData("daily ", 6, "the schedule ends with a space")]
    [InlineData(" daily", 1, "the schedule starts with a space")]
    [InlineData("daily EDT", 7, "\"EDT\" after \"daily\" is not a time zone")]
    [InlineData("*-*-* 25:00", 7, "hour 25 is out of range (0-23)")]
    [InlineData("*-*-* 02:60", 10, "minute 60 is out of range (0-59)")]
    [InlineData("*-13-01", 3, "month 13 is out of range (1-12)")]
    [InlineData("*-*-32", 5, "day 32 is out of range (1-31)")]
    [InlineData("2200-01-01", 1, "year 2200 is out of range (1970-2199)")]
    [InlineData("*:*:60", 5, "seconds 60 is out of range")]
    [InlineData("Fri..Mon", 4, "the weekday range Fri..Mon runs backwards")]
    [InlineData("Mon..Wed..Fri", 9, "cannot go on past its last day")]
    [InlineData("Monday..", 7, "has no last day")]
    [InlineData("Mondays", 7, "the weekday \"Monday\" is followed by 's'")]
    [InlineData("*/15:00", 1, "a repetition needs a start value, e.g. \"0/15\"")]
    [InlineData("*-*-25/10", 5, "day 25/10 never repeats within 1-31")]
    [InlineData("*~29", 3, "day ~29 counts from the end of the month")]
    [InlineData("2016~11-22", 5, "'~' (days counted from the end of the month) goes between the month and the day only")]
    [InlineData("*:*:10.5..11", 5, "shorter than its default step of one second")]
    [InlineData("00:00:00/0.00000001", 10, "a repetition of 0 never advances")]
    [InlineData("1.5:00", 2, "the hour must be a whole number")]
    [InlineData("00:00:2300", 7, "2300 is too large for the seconds")]
    [InlineData("12..1/2-*", 1, "the month range 12..1 runs backwards")]
    [InlineData("2026-11-* 02:00 Europe/paris", 16, "\"Europe/paris\" is not a time zone in /usr/share/zoneinfo")]
    [InlineData("*-*-* 02:30:00 +0100", 15, "a UTC offset such as \"+0100\" is not a time zone here")]
    [InlineData("*-*-* 02:00 ../../etc/passwd", 12, "is not a time zone")]
    [InlineData("@-1", 1, "year 1969 is out of range")]
    [InlineData("@1.5", 3, "the timestamp after '@' is whole seconds")]
    [InlineData("daily\nhost all all 0.0.0.0/0 trust", 6, "control character (U+000A)")]
    [InlineData("\u017funday", 1, "is not a weekday")]
    public void Invalid_expressions_are_refused_with_what_and_where(string text, int column, string message)
    {
        Assert.False(CalendarSpec.TryParseDetailed(text, Paris, out var spec, out var error));
        Assert.Null(spec);
        Assert.Equal(column, error.Column);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"column {column}: ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_list_holds_at_most_241_values_as_in_systemd()
    {
        Assert.True(CalendarSpec.TryParse("*:" + string.Join(',', Enumerable.Range(0, 241).Select(i => i % 60)), Utc, out _, out string? _));
        Assert.False(CalendarSpec.TryParse("*:" + string.Join(',', Enumerable.Range(0, 242).Select(i => i % 60)), Utc, out _, out string? error));
        Assert.Contains("at most 241 values", error, StringComparison.Ordinal);
    }

    [Theory]
    // Paris, spring: 02:30 does not exist on 2026-03-29, that day is skipped.
    [InlineData(":Europe/Paris", "*-*-* 02:30", "2026-03-28T12:00:00Z", "2026-03-30 00:30:00.000000", "2026-03-31 00:30:00.000000")]
    // Paris, spring: midnight comes 23 hours after the previous one.
    [InlineData(":Europe/Paris", "daily", "2026-03-28T12:00:00Z", "2026-03-28 23:00:00.000000", "2026-03-29 22:00:00.000000")]
    // Paris, autumn: the repeated 02:30 fires once, at its first (summer time) occurrence.
    [InlineData(":Europe/Paris", "*-*-* 02:30", "2026-10-24T23:00:00Z", "2026-10-25 00:30:00.000000", "2026-10-26 01:30:00.000000")]
    // Paris, autumn: "hourly" skips the repeated hour (02:00 CET); systemd's quirk, reproduced.
    [InlineData(":Europe/Paris", "hourly", "2026-10-24T23:00:00Z", "2026-10-25 00:00:00.000000", "2026-10-25 02:00:00.000000")]
    // New York: 01:30 on the day clocks go back is its first (EDT) occurrence.
    [InlineData(":America/New_York", "2026-11-01 01:30", "2026-03-01T00:00:00Z", "2026-11-01 05:30:00.000000")]
    [InlineData(":America/New_York", "*:30", "2026-11-01T05:00:00Z", "2026-11-01 05:30:00.000000", "2026-11-01 07:30:00.000000")]
    // Lord Howe: DST of 30 minutes; 02:15 does not exist on 2026-10-04.
    [InlineData(":Australia/Lord_Howe", "*-*-* 02:15", "2026-10-02T00:00:00Z", "2026-10-02 15:45:00.000000", "2026-10-04 15:15:00.000000")]
    // Lord Howe: the repeated 01:45 of 2026-04-05 fires at its second occurrence.
    [InlineData(":Australia/Lord_Howe", "*-*-* 01:45", "2026-04-04T00:00:00Z", "2026-04-04 14:45:00.000000", "2026-04-05 15:15:00.000000")]
    // A zone named in the expression wins over the local one; UTC is UTC.
    [InlineData(":Europe/Paris", "2026-11-* 02:00 Europe/Paris", "2026-07-01T00:00:00Z", "2026-11-01 01:00:00.000000", "2026-11-02 01:00:00.000000")]
    [InlineData(":UTC", "*-*-* 02:00 America/New_York", "2026-03-01T00:00:00Z", "2026-03-01 07:00:00.000000", "2026-03-02 07:00:00.000000")]
    [InlineData(":Europe/Paris", "daily UTC", "2026-07-01T00:00:00Z", "2026-07-02 00:00:00.000000", "2026-07-03 00:00:00.000000")]
    // Europe/Dublin (negative DST): mktime moves the search back; systemd steps on instead of looping.
    [InlineData(":UTC", "daily Europe/Dublin", "2026-03-29T00:00:00Z", "2026-03-29 23:00:00.000000", "2026-03-30 23:00:00.000000")]
    // Standard time forced: works in winter.
    [InlineData(":Europe/Paris", "12:00 CET", "2026-01-10T00:00:00Z", "2026-01-10 11:00:00.000000", "2026-01-11 11:00:00.000000")]
    // Leap years and days from the end of the month.
    [InlineData(":UTC", "*-02-29", "2026-01-01T00:00:00Z", "2028-02-29 00:00:00.000000", "2032-02-29 00:00:00.000000")]
    [InlineData(":UTC", "Mon *-02-29", "2026-01-01T00:00:00Z", "2044-02-29 00:00:00.000000", "2072-02-29 00:00:00.000000")]
    [InlineData(":UTC", "*-02~01", "2026-01-01T00:00:00Z", "2026-02-28 00:00:00.000000", "2027-02-28 00:00:00.000000", "2028-02-29 00:00:00.000000")]
    [InlineData(":UTC", "*-*~03", "2026-01-01T00:00:00Z", "2026-01-29 00:00:00.000000", "2026-02-26 00:00:00.000000", "2026-03-29 00:00:00.000000")]
    [InlineData(":UTC", "Mon *-05~07/1", "2026-01-01T00:00:00Z", "2026-05-25 00:00:00.000000", "2027-05-31 00:00:00.000000")]
    [InlineData(":UTC", "Fri *-*~1..7 23:00", "2026-01-01T00:00:00Z", "2026-01-30 23:00:00.000000", "2026-02-27 23:00:00.000000")]
    // Repetitions restart each month; fractions of a second.
    [InlineData(":UTC", "*-*-1/2 4:00:00", "2026-01-30T00:00:00Z", "2026-01-31 04:00:00.000000", "2026-02-01 04:00:00.000000", "2026-02-03 04:00:00.000000")]
    [InlineData(":UTC", "*:*:0/0.25", "2026-01-01T00:00:00Z", "2026-01-01 00:00:00.250000", "2026-01-01 00:00:00.500000")]
    [InlineData(":UTC", "2016-03-27 03:17:00.4200005 UTC", "2016-01-01T00:00:00Z", "2016-03-27 03:17:00.420001")]
    [InlineData(":UTC", "Mon..Fri 03:00", "2026-01-01T00:00:00Z", "2026-01-01 03:00:00.000000", "2026-01-02 03:00:00.000000", "2026-01-05 03:00:00.000000")]
    public void Next_elapses_are_systemds(string tz, string text, string after, params string[] expected)
    {
        var spec = Parse(text, CalendarTimeZone.FromTzVariable(tz));
        Assert.Equal(expected, Elapses(spec, after, expected.Length));
    }

    [Theory]
    [InlineData(":America/New_York", "2026-03-08 02:30", "2026-03-01T00:00:00Z")]   // in the spring-forward gap
    [InlineData(":UTC", "2027-02-29", "2026-01-01T00:00:00Z")]                      // not a leap year
    [InlineData(":UTC", "2100-02-29", "2026-01-01T00:00:00Z")]                      // not a leap year either
    [InlineData(":UTC", "*-04-31", "2026-01-01T00:00:00Z")]
    [InlineData(":UTC", "@1493187147", "2020-01-01T00:00:00Z")]                     // in the past
    [InlineData(":UTC", "2199-12-31 23:59:59", "2199-12-31T23:59:59Z")]             // the last second systemd reaches
    [InlineData(":Europe/Paris", "12:00 CET", "2026-07-01T00:00:00Z")]              // standard time forced in summer: systemd gives up
    public void Expressions_that_do_not_elapse_again_say_never(string tz, string text, string after)
    {
        var spec = Parse(text, CalendarTimeZone.FromTzVariable(tz));
        Assert.Equal(new CalendarElapse(CalendarElapseStatus.Never, null), spec.FindNextElapse(At(after)));
        Assert.Null(spec.NextElapse(At(after)));
    }

    [Fact]
    public void The_search_gives_up_after_systemds_thousand_steps()
    {
        // "-03" is Santiago's standard-time abbreviation; forcing it where winter and summer swap
        // makes systemd fail with "Infinite loop in calendar calculation" (EDEADLK).
        var santiago = CalendarTimeZone.FromTzVariable(":America/Santiago");
        var spec = Parse("Mon..Fri 00:30 -03", santiago);
        Assert.Equal(CalendarElapseStatus.SearchLimit, spec.FindNextElapse(DateTimeOffset.FromUnixTimeSeconds(1304781160)).Status);
    }

    [Fact]
    public void A_microsecond_before_an_elapse_finds_it_and_the_elapse_itself_finds_the_next()
    {
        var spec = Parse("2015-11-13 09:11:23.42/1.77", CalendarTimeZone.FromTzVariable(":Europe/Kyiv"));
        var first = DateTimeOffset.UnixEpoch.AddTicks(1447398683420000L * 10);
        Assert.Equal(first, spec.NextElapse(first.AddTicks(-10)));
        Assert.Equal(DateTimeOffset.UnixEpoch.AddTicks(1447398685190000L * 10), spec.NextElapse(first));
    }

    [Fact]
    public void Elapses_carry_the_offset_of_the_zone_they_are_computed_in()
    {
        var next = Parse("*-*-* 02:30", Paris).NextElapse(At("2026-07-01T00:00:00Z"))!.Value;
        Assert.Equal(TimeSpan.FromHours(2), next.Offset);
        Assert.Equal(new DateTime(2026, 7, 1, 2, 30, 0), next.DateTime);
    }

    [Fact]
    public void An_offset_of_seconds_leaves_the_elapse_in_utc()
    {
        // Monrovia kept its mean time (-0:44:30) until 1972: 12:00 local is 12:44:30 UTC.
        var next = Parse("1971-06-01 12:00", CalendarTimeZone.FromTzVariable(":Africa/Monrovia")).NextElapse(DateTimeOffset.UnixEpoch)!.Value;
        Assert.Equal(At("1971-06-01T12:44:30Z"), next);
        Assert.Equal(TimeSpan.Zero, next.Offset);
    }

    [Fact]
    public void Long_input_is_quoted_short_in_errors()
    {
        Assert.False(CalendarSpec.TryParse(new string('x', 100_000), Utc, out _, out string? error));
        Assert.True(error.Length < 400, error);
        Assert.False(CalendarSpec.TryParse("*:*:" + new string('9', 100_000), Utc, out _, out error));
        Assert.Contains("is too large for the seconds", error, StringComparison.Ordinal);
        Assert.True(error.Length < 400, error);
    }

    [Fact]
    public void The_period_is_the_interval_between_the_next_two_elapses()
    {
        Assert.Equal(TimeSpan.FromDays(1), Parse("*-*-* 02:30:00").PeriodAfter(At("2026-05-01T00:00:00Z")));
        Assert.Equal(TimeSpan.FromDays(7), Parse("weekly").PeriodAfter(At("2026-05-01T00:00:00Z")));
        Assert.Equal(TimeSpan.FromMinutes(15), Parse("*:0/15").PeriodAfter(At("2026-05-01T00:07:00Z")));
        // Across the spring change in Paris a day lasts 23 hours.
        Assert.Equal(TimeSpan.FromHours(23), Parse("daily", Paris).PeriodAfter(At("2026-03-28T12:00:00Z")));
        // Once, then never: no period.
        Assert.Null(Parse("2026-11-01 02:00").PeriodAfter(At("2026-01-01T00:00:00Z")));
    }

    [Fact]
    public void The_longest_interval_shows_the_weekend_of_a_weekday_schedule()
    {
        var weekdays = Parse("Mon..Fri *-*-* 03:00");
        var thursday = At("2026-01-01T00:00:00Z");
        Assert.Equal(TimeSpan.FromDays(1), weekdays.PeriodAfter(thursday));
        Assert.Equal(TimeSpan.FromDays(3), weekdays.LongestInterval(thursday, 5));
        // Every other day of the month: 31 → 1 is one day, 29 → 1 (February) is one too, 30 → 1 two.
        Assert.Equal(TimeSpan.FromDays(2), Parse("*-*-1/2 4:00:00").LongestInterval(At("2026-01-01T00:00:00Z"), 40));
    }

    [Fact]
    public void Zone_names_are_checked_as_systemd_checks_them()
    {
        Assert.True(CalendarTimeZone.TryFindZone("Europe/Paris", out var paris));
        Assert.Equal("CET", paris!.StandardAbbreviation);
        Assert.Equal("CEST", paris.DaylightAbbreviation);
        Assert.True(CalendarTimeZone.TryFindZone("UTC", out _));
        Assert.False(CalendarTimeZone.TryFindZone("Europe/paris", out _));   // case-sensitive
        Assert.False(CalendarTimeZone.TryFindZone("Europe//Paris", out _));
        Assert.False(CalendarTimeZone.TryFindZone("../etc/passwd", out _));
        Assert.False(CalendarTimeZone.TryFindZone("/etc/localtime", out _));
        Assert.False(CalendarTimeZone.TryFindZone("Europe/", out _));
        Assert.False(CalendarTimeZone.TryFindZone("zone.tab", out _));       // not TZif
        Assert.False(CalendarTimeZone.TryFindZone("Europe", out _));         // a directory
    }

    [Fact]
    public void The_tz_variable_is_read_as_glibc_reads_it()
    {
        var offsets = (CalendarTimeZone z) => (z.OffsetAt(At("2026-01-15T12:00:00Z")), z.OffsetAt(At("2026-07-15T12:00:00Z")));
        Assert.Equal((TimeSpan.FromHours(1), TimeSpan.FromHours(2)), offsets(CalendarTimeZone.FromTzVariable(":Europe/Paris")));
        Assert.Equal((TimeSpan.FromHours(1), TimeSpan.FromHours(2)), offsets(CalendarTimeZone.FromTzVariable("Europe/Paris")));
        Assert.Equal((TimeSpan.Zero, TimeSpan.Zero), offsets(CalendarTimeZone.FromTzVariable("")));
        // A POSIX TZ string with no file behind it, including the year beyond the file's transitions.
        var rule = CalendarTimeZone.FromTzVariable("CET-1CEST,M3.5.0,M10.5.0/3");
        Assert.Equal((TimeSpan.FromHours(1), TimeSpan.FromHours(2)), offsets(rule));
        Assert.Equal(("CET", "CEST"), (rule.StandardAbbreviation, rule.DaylightAbbreviation));
        Assert.Equal(TimeSpan.FromHours(2), CalendarTimeZone.FromTzVariable(":Europe/Paris").OffsetAt(At("2150-07-01T00:00:00Z")));
        // Southern hemisphere and half-hour DST.
        var lordHowe = CalendarTimeZone.FromTzVariable(":Australia/Lord_Howe");
        Assert.Equal((TimeSpan.FromHours(11), TimeSpan.FromHours(10.5)), offsets(lordHowe));
        Assert.Equal("+1030", lordHowe.AbbreviationAt(At("2026-07-15T12:00:00Z")));
        // An unknown name is UTC, as glibc makes it.
        Assert.Equal((TimeSpan.Zero, TimeSpan.Zero), offsets(CalendarTimeZone.FromTzVariable(":Mars/Olympus")));
    }
}
