namespace PgState.Tests.Calendar;

/// <summary>
/// Calendar expressions compared with systemd-analyze: the man page's examples, systemd's own test
/// cases, the schedules PgState's users write, DST and leap-year cases, local zone abbreviations,
/// and invalid input. Strings are exact (leading and trailing spaces matter).
/// </summary>
internal static class CalendarCorpus
{
    /// <summary>systemd accepts these only through strtoul's whitespace skipping; pgstate refuses control characters in a schedule.</summary>
    public static readonly IReadOnlySet<string> RefusedOnPurpose = new HashSet<string>(StringComparer.Ordinal) { "@\t5" };

    public static readonly string[] Expressions =
    [
        // The schedules of issues 1/9 and 8/9 and everyday backup schedules.
        "*-*-* 02:30:00", "Mon..Fri *-*-* 03:00", "weekly", "Sat,Sun 01:00", "*-*-1/2 4:00:00", "2026-11-* 02:00 Europe/Paris",
        "hourly", "*:0/15", "daily", "*-*-* 01:00", "Sun 04:00", "*-*-1,15 02:00", "*-*-* 0/4:00", "*-*-* 0..23/6:00",
        "*-*-* 8..18:00", "*-*-* 8..18/2:00,30", "*-*-* *:3/20", "*-*-* 23:59:59", "*-12-31 23:59:59", "Mon,Wed,Fri 22:00",
        "Tue..Thu,Sat 6:00", "*-*-* 12:00 America/New_York",
        // Shorthands.
        "minutely", "monthly", "yearly", "annually", "anually", "quarterly", "semiannually", "semi-annually", "biannually",
        "bi-annually", "DAILY", "Weekly", "daily UTC", "weekly Pacific/Auckland", "hourly Europe/Paris", "monthly America/New_York",
        // systemd.time(7) examples.
        "Thu,Fri 2012-*-1,5 11:12:13", "Sat,Thu,Mon..Wed,Sat..Sun", "Mon,Sun 12-*-* 2,1:23", "Wed *-1", "Wed..Wed,Wed *-1",
        "Wed, 17:48", "Wed..Sat,Tue 12-10-15 1:2:3", "*-*-7 0:0:0", "10-15", "monday *-12-* 17:00", "Mon,Fri *-*-3,1,2 *:30:45",
        "12,14,13,12:20,10,30", "12..14:10,20,30", "mon,fri *-1/2-1,3 *:30:45", "03-05 08:05:40", "08:05:40", "05:40",
        "Sat,Sun 12-05 08:05:40", "Sat,Sun 08:05:40", "2003-03-05 05:40", "05:40:23.4200004/3.1700005", "2003-02..04-05",
        "2003-03-05 05:40 UTC", "2003-03-05", "03-05", "*:2/3", "*-02~03", "Mon *-05~07/1",
        // systemd's test-calendarspec.c.
        "Sat,Thu,Mon-Wed,Sat-Sun", "Wed-Wed,Wed *-1", "Wednesday,", "Wed-Sat,Tue 12-10-15 1:2:3", "2015-10-25 01:00:00 uTc",
        "2015-10-25 01:00:00 Asia/Vladivostok", "2016-03-27 03:17:00.4200005", "2016-03-27 03:17:00/0.42", "9..11,13:00,30",
        "1..3-1..3 1..3:1..3", "00:00:1.125..2.125", "00:00:1.0..3.8", "00:00:01..03", "00:00:01/2,02..03", "*:4,30:0..3",
        "*:4,30:0/1", "*:4,30:0/1,3,5", "*-*~1 Utc", "*-*~05,3 ", "*-*~* 00:00:00", "Monday", "Monday *-*-*", "*-*-*", "*:*:*",
        "*:*", "12:*", "*:30", "93..00-*-*", "00..07-*-*", "*:20..39/5", "00:00:20..40/1", "*~03/1,03..05", "@1493187147",
        "@1493187147 UTC", "@0", "@0 UTC", "*:05..05", "*:05..10/6", "2016-03-27 03:17:00", "2016-03-27 03:17:00.420000001 UTC",
        "2015-11-13 09:11:23.42/1.77", "Sun 16:00:00", "*-04-31", "2016-02~01 UTC", "Mon 2017-05~01..07 UTC",
        "Mon 2017-05~07/1 UTC", "*-*-01/5 04:00:00 UTC", "*-01/7-01 04:00:00 UTC", "2017-08-06 9..17/2:00 UTC",
        "2016-12-* 3..21/6:00 UTC", "2017-09-24 02:30:00 Pacific/Auckland", "Sun *-*-* 01:00:00 Europe/Dublin",
        // Daylight saving time: times that are skipped or repeated in some of the zones compared.
        "*-*-* 02:30", "*-*-* 02:00", "*-*-* 03:00", "*-*-* 01:30", "*-*-* 02:15", "*-*-* 01:45", "*-*-* 1..3:0/30",
        "Sun *-*-* 02:30", "2026-03-29 02:30", "2026-10-25 02:30", "2026-03-08 02:30", "2026-11-01 01:30", "2026-04-05 01:45",
        "2026-10-04 02:15", "*-*-* 00:00 America/Sao_Paulo", "*-*-* 02:30 Europe/Paris", "*-*-* 02:30 Australia/Lord_Howe",
        "*-*-* 01:45 Australia/Lord_Howe", "*-*-* 2:30 America/New_York", "*-*-* 1:30 America/New_York",
        // Local zone abbreviations (their meaning depends on the zone systemd runs in).
        "12:00 CET", "12:00 CEST", "daily CET", "*-*-* 02:30 CEST", "daily EST", "daily EDT", "daily +1030", "daily +11",
        "daily cet", "hourly GMT",
        // Abbreviations of zones whose rules changed, where systemd's search gives up (1,000 steps) or a day is skipped.
        "Mon..Fri 00:30 -03", "Sun *-*-1 23:59:59 -03", "01:00 -02", "2011-12-30 *:*:*", "*-12-30 12:00",
        // Leap years and days counted from the end of the month.
        "*-02-29", "*-02-29 12:00 UTC", "Mon *-02-29", "2028-02-29", "2027-02-29", "*-02~01", "*-02~1..3", "*-*~01", "*-*~28",
        "*-*~7/2", "Fri *-*~1..7 23:00", "*-*~1,15", "2100-02-29", "2000-02-29",
        // Years.
        "2030-01-01", "1970-01-01", "2199-12-31 23:59:59", "69-01-01", "70-01-01", "99-12-31", "2199-*-*", "2000..2199/100-01-01",
        // Seconds.
        "*:*:59.999999", "*:*:0.5", "*:*:00/0.5", "*:*:0/0.25", "*:*:10..11", "*:*:30/15", "*-*-* 00:00:0.9999996",
        "*:*:0/1,30.5", "*:*:0.5/1,0/1", "*:*:0..59",
        // Weekdays.
        "Mon..Sun", "Sun,Mon", "Sat..Sun", "Mon,Tue,Wed", "mOn", "SUNDAY", "Mon, 12:00", "Mon,", "Mon-Wed", "Mon 12:00:00 UTC",
        "Sat,Sun *-*-* 01:00 Europe/Paris",
        // Other zones named in the expression.
        "*-*-* 12:00 Australia/Lord_Howe", "daily Europe/London", "daily Etc/GMT+5", "daily GMT", "daily Europe/Dublin",
        "daily Asia/Kolkata", "daily Asia/Kathmandu", "daily Etc/UTC", "daily EST5EDT", "*-*-*  02:00", "*-*-31", "*-02-30",
        // Invalid.
        "every day", "", " ", "    ", "test", " utc", "UTC", "7", "121212:1:2", "2000-03-05.23 00:00:00", "2000-03-05 00:00.1:00",
        "00:00:00/0.00000001", "00:00:00.0..00.9", "2016~11-22", "*-*~5/5", "Monday.. 12:00", "Monday..", "-00:+00/-5",
        "00:+00/-5", "2016- 11- 24 12: 30: 00", "*~29", "*~16..31", "12..1/2-*", "20/4:00", "00:00/60", "00:00:2300",
        "00:00:18446744073709551615", "@88588582097858858", "*:4,30:*,5", "*:4,30:5,*", "daily ", " daily", "daily  UTC",
        "*/15:00", "*:*/15", "24:00", "23:60", "*:*:60", "*-13-01", "*-00-01", "*-*-32", "*-*-0", "2200-01-01", "1969-12-31",
        "Fri..Mon", "Mon.Fri", "Mon..Wed..Fri", "Mondays", "Mo", "Mon:12", "2026-11-* 02:00 Europe/paris",
        "*-*-* 2:00 Europe//Paris", "*-*-* 02:00 Mars/Olympus", "02:30 Mon", "1.5:00", "*-*-25/10", "*~2/3", "*:*:10.5..11", "@-1",
        "@", "@x", "@1.5", "*-*-* 02:30:00 +0100", "0x10:00", "2026-1-1T02:00", "12:00,", "1,,2:00", "Mon..Fri 24:00",
        "every 15 minutes", "02:30 PM", "noon", "@daily", "1..10/0:00", "*-*-* 02:00 /etc/localtime", "daily ../UTC",
        "Mon\u00a0Fri", "\u017funday", "@ 5", "@+5", "@\t5",
        // The longest list systemd accepts (241 values) and one more.
        "*:" + string.Join(',', Enumerable.Repeat("0", 241)), "*:" + string.Join(',', Enumerable.Repeat("0", 242)),
    ];
}
