using System.Collections.Concurrent;

namespace PgState.Engine.Calendar;

/// <summary>
/// The time zone a calendar expression without a zone of its own is evaluated in — what glibc calls
/// local time — and the zones an expression names ("... Europe/Paris"). Read from the compiled files
/// under /usr/share/zoneinfo as glibc reads them (offsets, DST flags, abbreviations and the POSIX
/// footer), not through <see cref="TimeZoneInfo"/>, whose names and DST flags are not glibc's.
/// </summary>
/// <remarks>
/// systemd (PID 1) evaluates OnCalendar= in the zone of /etc/localtime: <see cref="SystemDefault"/>.
/// <c>systemd-analyze calendar</c> run by a user honours $TZ: <see cref="FromTzVariable"/>.
/// </remarks>
public sealed class CalendarTimeZone
{
    /// <summary>Where systemd looks for the zones an expression names; glibc's TZDIR default.</summary>
    public const string ZoneInfoDirectory = "/usr/share/zoneinfo";

    private const string LocalTimeFile = "/etc/localtime";
    private const int MaximumFileSize = 1 << 20;

    private static readonly ConcurrentDictionary<string, CalendarTimeZone> Loaded = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, CalendarTimeZone?> Named = new(StringComparer.Ordinal);

    private readonly TzifData? file;
    private readonly PosixTimeZoneRule? rule;

    /// <summary>Coordinated Universal Time (tzname "UTC").</summary>
    public static CalendarTimeZone Utc { get; } = new("UTC", null, null, "UTC", "UTC");

    /// <summary>The zone of /etc/localtime, as systemd's timers see it (UTC when the file is missing).</summary>
    public static CalendarTimeZone SystemDefault => FromTzVariable(null);

    /// <summary>What the zone is called: the TZ value or file it came from.</summary>
    public string Name { get; }

    /// <summary>glibc's tzname[0] for this zone: the abbreviation an expression may end with to mean standard time.</summary>
    public string StandardAbbreviation { get; }

    /// <summary>glibc's tzname[1]: the abbreviation that means daylight saving time.</summary>
    public string DaylightAbbreviation { get; }

    internal bool IsUtc => file is null && rule is null;

    private CalendarTimeZone(string name, TzifData? file, PosixTimeZoneRule? rule, string standard, string daylight)
    {
        Name = name;
        this.file = file;
        this.rule = rule;
        StandardAbbreviation = standard;
        DaylightAbbreviation = daylight;
    }

    /// <summary>
    /// The zone glibc uses for a given value of the TZ environment variable: null (unset) means
    /// /etc/localtime, "" means UTC, ":Area/City" or "Area/City" a file under /usr/share/zoneinfo,
    /// "/path" a file, anything else a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"); what cannot
    /// be read is UTC.
    /// </summary>
    public static CalendarTimeZone FromTzVariable(string? tz)
    {
        var key = tz ?? "\0unset";
        if (Loaded.TryGetValue(key, out var known))
        {
            return known;
        }
        var zone = Resolve(tz);
        Loaded.TryAdd(key, zone);
        return zone;
    }

    /// <summary>A zone given by a POSIX TZ string only, without reading any file.</summary>
    public static CalendarTimeZone? FromPosixRule(string rule) =>
        PosixTimeZoneRule.TryParse(rule) is { } parsed ? new CalendarTimeZone(rule, null, parsed, parsed.StandardName, parsed.DaylightName) : null;

    /// <summary>
    /// The zone an expression names, checked as systemd checks it (verify_timezone): "UTC", or a name of
    /// letters, digits, '-', '_', '+' and single '/' that is a regular file in /usr/share/zoneinfo
    /// starting with the TZif magic. Names are case-sensitive ("Europe/paris" is not a zone).
    /// </summary>
    public static bool TryFindZone(string name, out CalendarTimeZone? zone)
    {
        // Only well-formed names reach the file system (and the cache).
        zone = IsZoneName(name) ? Named.GetOrAdd(name, FindZone) : null;
        return zone is not null;
    }

    private static bool IsZoneName(string name)
    {
        if (name.Length == 0 || name.Length >= 4096 || (name != "UTC" && (name[0] == '/' || name[^1] == '/')))
        {
            return false;
        }
        var slash = false;
        foreach (var c in name)
        {
            if ((!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_' && c != '+' && c != '/') || (c == '/' && slash))
            {
                return false;
            }
            slash = c == '/';
        }
        return true;
    }

    private static CalendarTimeZone? FindZone(string name)
    {
        if (name == "UTC")
        {
            return FromTzVariable(":UTC");
        }
        var path = ZoneInfoDirectory + "/" + name;
        if (ReadFile(path) is not { } bytes || !TzifData.HasMagic(bytes))
        {
            return null;
        }
        // systemd then evaluates the expression in a child with TZ=":name"; glibc reads the same file.
        return FromTzVariable(":" + name);
    }

    private static CalendarTimeZone Resolve(string? tz)
    {
        if (tz is "")
        {
            tz = "Universal";
        }
        if (tz is not null && tz.StartsWith(':'))
        {
            tz = tz[1..];
        }
        var path = string.IsNullOrEmpty(tz) ? LocalTimeFile : tz[0] == '/' ? tz : ZoneInfoDirectory + "/" + tz;
        if (ReadFile(path) is { } bytes && TzifData.TryRead(bytes) is { } data)
        {
            return new CalendarTimeZone(tz ?? LocalTimeFile, data, null, data.StandardName, data.DaylightName);
        }
        if (string.IsNullOrEmpty(tz) || tz == LocalTimeFile)
        {
            return Utc;
        }
        if (PosixTimeZoneRule.TryParse(tz) is { } parsed)
        {
            return new CalendarTimeZone(tz, null, parsed, parsed.StandardName, parsed.DaylightName);
        }
        // glibc: an unreadable zone is UTC without names.
        return new CalendarTimeZone(tz, null, null, "", "");
    }

    private static byte[]? ReadFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > MaximumFileSize)
            {
                return null;
            }
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>UTC offset (seconds east), DST flag and abbreviation glibc's localtime reports at <paramref name="t"/>.</summary>
    internal (int Offset, bool IsDst, string Abbreviation) Lookup(long t)
    {
        if (file is not null)
        {
            var type = file.Lookup(t);
            return (type.Offset, type.IsDst, type.Abbreviation);
        }
        if (rule is not null)
        {
            return rule.Lookup(t);
        }
        return (0, false, StandardAbbreviation);
    }

    /// <summary>The UTC offset in force at an instant.</summary>
    public TimeSpan OffsetAt(DateTimeOffset instant) => TimeSpan.FromSeconds(Lookup(instant.ToUnixTimeSeconds()).Offset);

    /// <summary>The abbreviation in force at an instant ("CET", "CEST", "+1030").</summary>
    public string AbbreviationAt(DateTimeOffset instant) => Lookup(instant.ToUnixTimeSeconds()).Abbreviation;

    public override string ToString() => Name;
}
