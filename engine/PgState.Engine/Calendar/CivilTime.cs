namespace PgState.Engine.Calendar;

/// <summary>Proleptic Gregorian arithmetic on days and seconds since 1970-01-01 (UTC, no leap seconds).</summary>
internal static class CivilTime
{
    public const long SecondsPerDay = 86_400;

    /// <summary>Days before each month, for common and leap years (glibc's __mon_yday).</summary>
    private static readonly int[][] DaysBeforeMonth =
    [
        [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
        [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
    ];

    public static bool IsLeap(long year) => year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    /// <summary>Days before month <paramref name="month0"/> (0–12) of <paramref name="year"/>.</summary>
    public static int DaysBefore(long year, int month0) => DaysBeforeMonth[IsLeap(year) ? 1 : 0][month0];

    public static int DaysInMonth(long year, int month0) => DaysBefore(year, month0 + 1) - DaysBefore(year, month0);

    /// <summary>Days from 1970-01-01 to <paramref name="year"/>-01-01.</summary>
    public static long DaysToYear(long year)
    {
        var y = year - 1;
        return 365 * (year - 1970) + (FloorDiv(y, 4) - FloorDiv(y, 100) + FloorDiv(y, 400)) - 477;
    }

    /// <summary>Seconds since the epoch of the given fields read as UTC; the fields need not be in range
    /// (a yday of 400 or an hour of 30 simply carry), as glibc's ydhms_diff counts them.</summary>
    public static long Linear(long year, long yday, long hour, long minute, long second) =>
        (DaysToYear(year) + yday) * SecondsPerDay + hour * 3600 + minute * 60 + second;

    public static void FromDays(long days, out long year, out int month0, out int day, out int yday)
    {
        // Hinnant's civil_from_days on an era of 400 years.
        var z = days + 719_468;
        var era = FloorDiv(z, 146_097);
        var doe = z - era * 146_097;
        var yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        var y = yoe + era * 400;
        var doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        var mp = (5 * doy + 2) / 153;
        day = (int)(doy - (153 * mp + 2) / 5 + 1);
        var m = mp < 10 ? mp + 3 : mp - 9;
        year = m <= 2 ? y + 1 : y;
        month0 = (int)m - 1;
        yday = DaysBefore(year, month0) + day - 1;
    }

    /// <summary>0 = Sunday, as tm_wday.</summary>
    public static int WeekDay(long days) => (int)FloorMod(days + 4, 7);

    public static long FloorDiv(long a, long b) => a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);

    public static long FloorMod(long a, long b) => a - FloorDiv(a, b) * b;
}
