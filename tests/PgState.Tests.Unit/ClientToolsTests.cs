using System.Text;
using PgState.Engine.Host;

namespace PgState.Tests.Unit;

/// <summary>Client tools against the server: versions read from the programs' files, and which combinations fail.</summary>
public sealed class ClientToolsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pgstate-tools-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_version_is_read_from_the_programs_text_without_running_it()
    {
        var path = Path.Combine(_dir, "pg_basebackup");
        File.WriteAllBytes(path, [0x7f, (byte)'E', 0, .. Encoding.ASCII.GetBytes("pg_basebackup (PostgreSQL) 17.10 (Debian 17.10-1.pgdg120+1)"), 0, 1, 2]);
        Assert.Equal("17.10", ClientTools.ReadVersion(path, "pg_basebackup (PostgreSQL) "));
        File.WriteAllText(path, "#!/usr/bin/perl\n# pg_wrapper\n");
        Assert.Null(ClientTools.ReadVersion(path, "pg_basebackup (PostgreSQL) "));
    }

    [Fact]
    public void Installed_tools_report_their_own_version()
    {
        var tool = ClientTools.FindPostgres("pg_basebackup", 15, "/usr/bin");
        Assert.Equal("/usr/lib/postgresql/15/bin/pg_basebackup", tool.Path);
        Assert.Equal(15, tool.Major);
        Assert.Matches(@"^15\.[0-9]+$", tool.Version);
    }

    [Fact]
    public void An_older_tool_fails_with_what_to_install_and_a_newer_one_serves()
    {
        var old = new ClientTool("pg_basebackup", "/usr/lib/postgresql/15/bin/pg_basebackup", "15.18");
        Assert.Equal("pg_basebackup 15.18 (/usr/lib/postgresql/15/bin/pg_basebackup) is older than the server (PostgreSQL 17.10): it cannot back it up; " +
            "install PostgreSQL 17's client tools (Debian/Ubuntu: postgresql-client-17; RHEL: postgresql17, both from the PGDG repositories)",
            ClientTools.Incompatibility(old, 17, "17.10"));
        Assert.Null(ClientTools.Incompatibility(old, 13, "13.23"));
        Assert.Null(ClientTools.Incompatibility(old, 15, "15.4"));
        Assert.Contains("cannot read its backups", ClientTools.Incompatibility(old with { Program = "pg_verifybackup" }, 16, "16.1"));
        Assert.StartsWith("pg_basebackup is not installed", ClientTools.Incompatibility(new ClientTool("pg_basebackup", null, null), 16, "16.1"));
    }

    [Fact]
    public void PgBackRest_supports_18_from_2_55()
    {
        Assert.Contains("does not support PostgreSQL 18.1 (pgBackRest supports PostgreSQL 18 from 2.55)",
            ClientTools.Incompatibility(new ClientTool("pgbackrest", "/usr/bin/pgbackrest", "2.45"), 18, "18.1"));
        Assert.Null(ClientTools.Incompatibility(new ClientTool("pgbackrest", "/usr/bin/pgbackrest", "2.55.1"), 18, "18.1"));
        Assert.Null(ClientTools.Incompatibility(new ClientTool("pgbackrest", "/usr/bin/pgbackrest", "2.45"), 15, "15.18"));
        Assert.Equal("pgbackrest is not on PATH: install pgBackRest", ClientTools.Incompatibility(new ClientTool("pgbackrest", null, null), 15, "15.18"));
        Assert.True(ClientTools.CompareVersions("2.9", "2.55") < 0);
    }
}
