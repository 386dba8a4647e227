using System.Buffers.Binary;
using System.Text;

namespace PgState.Engine.Calendar;

/// <summary>
/// A compiled time zone file (tzfile(5), RFC 8536) read as glibc's __tzfile_read reads it: the 64-bit
/// data block when the file has one, the POSIX TZ footer for instants after the last transition,
/// and tzname[] chosen from the latest standard and daylight types. Leap-second records ("right/"
/// zones) are not applied.
/// </summary>
internal sealed class TzifData
{
    public readonly record struct LocalTimeType(int Offset, bool IsDst, string Abbreviation);

    public long[] Transitions { get; }
    public byte[] TransitionTypes { get; }
    public LocalTimeType[] Types { get; }
    public PosixTimeZoneRule? Footer { get; }
    public string StandardName { get; }
    public string DaylightName { get; }

    private TzifData(long[] transitions, byte[] transitionTypes, LocalTimeType[] types, PosixTimeZoneRule? footer)
    {
        Transitions = transitions;
        TransitionTypes = transitionTypes;
        Types = types;
        Footer = footer;
        string? std = null, dst = null;
        for (var i = transitions.Length - 1; i >= 0 && (std is null || dst is null); i--)
        {
            var type = types[transitionTypes[i]];
            if (type.IsDst)
            {
                dst ??= type.Abbreviation;
            }
            else
            {
                std ??= type.Abbreviation;
            }
        }
        StandardName = std ?? types[0].Abbreviation;
        DaylightName = dst ?? StandardName;
    }

    public static bool HasMagic(ReadOnlySpan<byte> data) => data.Length >= 4 && data[..4].SequenceEqual("TZif"u8);

    public static TzifData? TryRead(ReadOnlySpan<byte> data)
    {
        if (!HasMagic(data) || data.Length < 44)
        {
            return null;
        }
        var version = data[4];
        if (!TryBlock(data, 0, timeSize: 4, out var transitions, out var transitionTypes, out var types, out var next))
        {
            return null;
        }
        if (version == 0)
        {
            return new TzifData(transitions, transitionTypes, types, null);
        }
        if (!HasMagic(data[next..]) || !TryBlock(data, next, timeSize: 8, out transitions, out transitionTypes, out types, out next))
        {
            return null;
        }
        PosixTimeZoneRule? footer = null;
        if (next < data.Length && data[next] == (byte)'\n')
        {
            var rest = data[(next + 1)..];
            var newline = rest.IndexOf((byte)'\n');
            if (newline > 0)
            {
                footer = PosixTimeZoneRule.TryParse(Encoding.ASCII.GetString(rest[..newline]));
            }
        }
        return new TzifData(transitions, transitionTypes, types, footer);
    }

    private static bool TryBlock(ReadOnlySpan<byte> data, int at, int timeSize, out long[] transitions, out byte[] transitionTypes, out LocalTimeType[] types, out int next)
    {
        transitions = [];
        transitionTypes = [];
        types = [];
        next = 0;
        if (data.Length - at < 44)
        {
            return false;
        }
        var header = data.Slice(at + 20, 24);
        var isUtCount = BinaryPrimitives.ReadUInt32BigEndian(header);
        var isStdCount = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        var leapCount = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        var timeCount = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
        var typeCount = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        var charCount = BinaryPrimitives.ReadUInt32BigEndian(header[20..]);
        if (typeCount == 0 || typeCount > 256 || timeCount > 100_000 || charCount > 100_000 || leapCount > 100_000 || isUtCount > 256 || isStdCount > 256)
        {
            return false;
        }
        var length = (long)timeCount * (timeSize + 1) + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount + isUtCount;
        var p = at + 44;
        if (data.Length - p < length)
        {
            return false;
        }
        transitions = new long[timeCount];
        for (var i = 0; i < timeCount; i++, p += timeSize)
        {
            transitions[i] = timeSize == 4 ? BinaryPrimitives.ReadInt32BigEndian(data[p..]) : BinaryPrimitives.ReadInt64BigEndian(data[p..]);
        }
        transitionTypes = data.Slice(p, (int)timeCount).ToArray();
        p += (int)timeCount;
        if (transitionTypes.Any(t => t >= typeCount))
        {
            return false;
        }
        var chars = data.Slice(p + (int)typeCount * 6, (int)charCount);
        types = new LocalTimeType[typeCount];
        for (var i = 0; i < typeCount; i++, p += 6)
        {
            var isDst = data[p + 4];
            var index = data[p + 5];
            if (isDst > 1 || index > charCount)
            {
                return false;
            }
            var name = chars[index..];
            var nul = name.IndexOf((byte)0);
            types[i] = new LocalTimeType(BinaryPrimitives.ReadInt32BigEndian(data[p..]), isDst == 1, Encoding.ASCII.GetString(nul >= 0 ? name[..nul] : name));
        }
        next = (int)(at + 44 + length);
        return true;
    }

    /// <summary>What glibc's localtime reports at <paramref name="t"/> (__tzfile_compute).</summary>
    public LocalTimeType Lookup(long t)
    {
        if (Transitions.Length == 0 || t < Transitions[0])
        {
            // Before the first transition: the first non-DST type (or the first type).
            foreach (var type in Types)
            {
                if (!type.IsDst)
                {
                    return type;
                }
            }
            return Types[0];
        }
        if (t >= Transitions[^1])
        {
            if (Footer is not null)
            {
                var (offset, isDst, abbreviation) = Footer.Lookup(t);
                return new LocalTimeType(offset, isDst, abbreviation);
            }
            return Types[TransitionTypes[^1]];
        }
        var i = Array.BinarySearch(Transitions, t);
        var index = i >= 0 ? i : ~i - 1;
        return Types[TransitionTypes[index]];
    }
}
