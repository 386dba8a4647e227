using PgState.Engine.Host;
using PgState.Modules.Archiving;

namespace PgState.Tests.Unit;

public class ArchiveCommandTests
{
    [Fact]
    public void Copy_command_quotes_the_destination_for_sh_and_escapes_percent()
    {
        var command = ArchiveCommands.Copy("/mnt/it's 100%");
        Assert.Contains("'/mnt/it'\\''s 100%%'/%f", command);
        Assert.DoesNotContain("100% ", command);
    }

    [Fact]
    public void Copy_command_uses_only_coreutils_and_never_overwrites()
    {
        var command = ArchiveCommands.Copy("/pg_archive");
        Assert.StartsWith("if [ -f '/pg_archive'/%f ]; then cmp -s %p '/pg_archive'/%f; else cp %p", command);
        Assert.Contains("mv -n", command);
        Assert.Contains("sync '/pg_archive'/.%f.tmp", command);
        Assert.Contains("sync '/pg_archive' ", command);
    }

    [Fact]
    public void PgBackRest_command_names_the_stanza() =>
        Assert.Equal("pgbackrest --stanza=main archive-push %p", ArchiveCommands.PgBackRest("main"));

    [Theory]
    [InlineData("x\\'; CREATE TABLE pwned(); --", "E'x\\\\''; CREATE TABLE pwned(); --'")]
    [InlineData("plain", "E'plain'")]
    [InlineData("it's", "E'it''s'")]
    public void Sql_literals_are_e_strings_read_the_same_under_any_standard_conforming_strings(string value, string literal) =>
        Assert.Equal(literal, Sql.Literal(value));

    [Fact]
    public void A_nul_never_reaches_sql() =>
        Assert.Throws<PgState.Engine.Diagnostics.PgStateException>(() => Sql.Literal("a\0b"));
}
