using System.Globalization;

namespace PgState.Modules.Backups;

/// <summary>A WAL segment file name (TTTTTTTTXXXXXXXXYYYYYYYY) as timeline and segment number.</summary>
public readonly record struct WalSegment(uint Timeline, ulong Number) : IComparable<WalSegment>
{
    /// <summary>Segments per "xlogid" for a segment size: 0x100000000 / size.</summary>
    public static ulong PerId(long segmentSize) => 0x1_0000_0000UL / (ulong)segmentSize;

    public static bool TryParse(string name, long segmentSize, out WalSegment segment)
    {
        segment = default;
        if (name.Length != 24 || !name.All(char.IsAsciiHexDigit)
            || !uint.TryParse(name.AsSpan(0, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var tli)
            || !uint.TryParse(name.AsSpan(8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hi)
            || !uint.TryParse(name.AsSpan(16, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var lo))
        {
            return false;
        }
        segment = new WalSegment(tli, hi * PerId(segmentSize) + lo);
        return true;
    }

    public string Name(long segmentSize) =>
        string.Create(CultureInfo.InvariantCulture, $"{Timeline:X8}{Number / PerId(segmentSize):X8}{Number % PerId(segmentSize):X8}");

    public WalSegment Next => this with { Number = Number + 1 };

    /// <summary>The first byte of this segment as an LSN.</summary>
    public ulong StartLsn(long segmentSize) => Number * (ulong)segmentSize;

    public int CompareTo(WalSegment other) => (Timeline, Number).CompareTo((other.Timeline, other.Number));

    public static bool operator <(WalSegment a, WalSegment b) => a.CompareTo(b) < 0;

    public static bool operator >(WalSegment a, WalSegment b) => a.CompareTo(b) > 0;

    public static bool operator <=(WalSegment a, WalSegment b) => a.CompareTo(b) <= 0;

    public static bool operator >=(WalSegment a, WalSegment b) => a.CompareTo(b) >= 0;
}

/// <summary>LSNs as PostgreSQL writes them (X/X).</summary>
public static class Lsn
{
    public static bool TryParse(string text, out ulong lsn)
    {
        lsn = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0
            || !uint.TryParse(text.AsSpan(0, slash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hi)
            || !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var lo))
        {
            return false;
        }
        lsn = ((ulong)hi << 32) | lo;
        return true;
    }

    public static string Format(ulong lsn) => string.Create(CultureInfo.InvariantCulture, $"{lsn >> 32:X}/{lsn & 0xFFFF_FFFF:X}");
}

/// <summary>What an archive directory (method copy) says about a gap after the last segment recovery found.</summary>
public sealed record WalGap(WalSegment FirstMissing, WalSegment LastMissing, WalSegment NextPresent, WalSegment LastInArchive)
{
    public ulong Count => LastMissing.Number - FirstMissing.Number + 1;

    /// <summary>
    /// After recovery stopped at <paramref name="lastRestored"/>: the segments missing before the
    /// next one the archive holds on the same timeline, or null when the archive holds nothing later
    /// (recovery reached its end). Streams the directory: no list of names is kept.
    /// </summary>
    public static WalGap? Find(IEnumerable<string> archiveNames, WalSegment lastRestored, long segmentSize)
    {
        WalSegment? next = null;
        WalSegment? last = null;
        foreach (var name in archiveNames)
        {
            if (!WalSegment.TryParse(name, segmentSize, out var s) || s.Timeline != lastRestored.Timeline || s <= lastRestored)
            {
                continue;
            }
            if (next is not { } n || s < n)
            {
                next = s;
            }
            if (last is not { } l || s > l)
            {
                last = s;
            }
        }
        if (next is not { } present || present == lastRestored.Next)
        {
            // Nothing later, or the very next segment is there (recovery stopped for another reason).
            return null;
        }
        return new WalGap(lastRestored.Next, present with { Number = present.Number - 1 }, present, last!.Value);
    }
}
