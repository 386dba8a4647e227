using PgState.Modules.Archiving;

namespace PgState.Tests.Unit;

public class SettingValuesTests
{
    private static ParameterInfo Int(string name, string? unit, string min = "0", string max = "2147483647") =>
        new(name, "integer", unit, "sighup", min, max, []);

    [Theory]
    [InlineData("kB", "1GB", "1024MB")]
    [InlineData("8kB", "128MB", "16384")]
    [InlineData("s", "5min", "300")]
    [InlineData("ms", "1s", "1000")]
    [InlineData("min", "1h", "60")]
    [InlineData("MB", "1GB", "1024")]
    [InlineData("s", "1d", "86400")]
    [InlineData(null, "0600", "384")]
    [InlineData(null, "0x10", "16")]
    public void Values_in_different_units_compare_equal(string? unit, string a, string b)
    {
        var info = Int("p", unit);
        Assert.Equal(SettingValues.Normalize(info, a), SettingValues.Normalize(info, b));
    }

    [Theory]
    [InlineData("on", "true")]
    [InlineData("on", "yes")]
    [InlineData("off", "0")]
    [InlineData("OFF", "false")]
    public void Booleans_compare_by_meaning(string a, string b)
    {
        var info = new ParameterInfo("p", "bool", null, "sighup", null, null, []);
        Assert.Equal(SettingValues.Normalize(info, a), SettingValues.Normalize(info, b));
    }

    [Fact]
    public void Enums_compare_case_insensitively_and_reject_unknown_values()
    {
        var info = new ParameterInfo("wal_level", "enum", null, "postmaster", null, null, ["minimal", "replica", "logical"]);
        Assert.Equal("replica", SettingValues.Normalize(info, "REPLICA"));
        Assert.False(SettingValues.TryNormalize(info, "archive", out _, out var error));
        Assert.Contains("minimal, replica, logical", error);
    }

    [Theory]
    [InlineData("wal_compression", "on", "pglz")]
    [InlineData("wal_compression", "yes", "pglz")]
    [InlineData("wal_compression", "OFF", "off")]
    [InlineData("wal_compression", "lz4", "lz4")]
    [InlineData("archive_mode", "yes", "on")]
    [InlineData("archive_mode", "0", "off")]
    public void Enum_aliases_compare_as_the_value_pg_settings_shows(string name, string written, string shown)
    {
        var info = new ParameterInfo(name, "enum", null, "sighup", null, null, ["pglz", "lz4", "zstd", "on", "off", "always"]);
        Assert.Equal(SettingValues.Normalize(info, shown), SettingValues.Normalize(info, written));
        Assert.Equal(written.ToLowerInvariant() is "yes" or "0" ? (written == "0" ? "off" : "on") : written.ToLowerInvariant(), SettingValues.Display(info, written));
    }

    [Fact]
    public void Out_of_range_and_bad_units_are_errors()
    {
        var info = Int("archive_timeout", "s", "0", "1073741823");
        Assert.False(SettingValues.TryNormalize(info, "-5", out _, out var range));
        Assert.Contains("outside the allowed range", range);
        Assert.False(SettingValues.TryNormalize(info, "5GB", out _, out var unit));
        Assert.Contains("invalid unit 'GB'", unit);
        Assert.False(SettingValues.TryNormalize(info, "soon", out _, out var nan));
        Assert.Contains("not a number", nan);
    }

    [Theory]
    [InlineData("s", "300", "5min")]
    [InlineData("8kB", "16384", "128MB")]
    [InlineData("s", "0", "0")]
    [InlineData("ms", "1500", "1500ms")]
    [InlineData("kB", "-1", "-1")]
    public void Display_uses_the_largest_exact_unit(string unit, string value, string shown) =>
        Assert.Equal(shown, SettingValues.Display(Int("p", unit, "-1"), value));
}
